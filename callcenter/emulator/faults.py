"""Fault injection: failing or slow REST answers, refused or dropped sidebands.

Faults are plain data added to the emulator's :class:`FaultPlan`; each applies to the next
``times`` matching requests (``None``: all of them) of one call or of every call. A fault is
used up when it fires. Webhook faults (duplicates, late timestamps, wrong secrets) are
options of each delivery instead (see ``webhooks.Delivery``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callcenter.emulator.api_error import ApiError

REST_VERBS = frozenset({"accept", "reject", "refer", "hangup"})


@dataclass
class RestFault:
    """The next matching calls-endpoint requests wait ``latency`` s, then fail with ``status``.

    ``verb`` (accept, reject, refer, hangup) and ``call_id`` narrow the match; ``None``
    matches all. ``status`` None only delays. A 429 carries ``Retry-After`` if given.
    """

    verb: str | None = None
    status: int | None = 500
    times: int | None = 1
    call_id: str | None = None
    latency: float = 0.0
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.verb is not None and self.verb not in REST_VERBS:
            raise ValueError(
                f"RestFault verb must be one of {sorted(REST_VERBS)}, not {self.verb!r}"
            )

    def error(self) -> ApiError:
        """The OpenAI-shaped error this fault answers with."""
        status = self.status or 500
        if status == 429:
            message = "Rate limit reached for requests. Please try again in a moment."
            return ApiError(status, message, code="rate_limit_exceeded", type="requests")
        if status >= 500:
            message = "The server had an error while processing your request. Sorry about that!"
            return ApiError(status, message, type="server_error")
        return ApiError(status, f"Injected error with status {status}.", code="injected_fault")


@dataclass
class SidebandFault:
    """The next matching sideband attaches are refused, or dropped after some events.

    ``refuse_status`` refuses the handshake with that HTTP status. Otherwise the socket is
    dropped after ``drop_after_events`` server events: ``close_code`` 1006 cuts the TCP
    connection, any other code closes with that code. The call stays live either way.
    """

    refuse_status: int | None = None
    drop_after_events: int | None = None
    close_code: int = 1006
    times: int | None = 1
    call_id: str | None = None

    def __post_init__(self) -> None:
        if (self.refuse_status is None) == (self.drop_after_events is None):
            raise ValueError("SidebandFault needs exactly one of refuse_status, drop_after_events")


Fault = RestFault | SidebandFault


class FaultPlan:
    """The faults waiting to fire. Safe to change from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Arm ``fault``."""
        with self._lock:
            self._faults.append(fault)

    def fail_rest(
        self,
        verb: str | None = None,
        *,
        status: int = 500,
        times: int | None = 1,
        call_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next ``times`` matching REST requests answer ``status``."""
        self.add(RestFault(verb, status, times, call_id, retry_after=retry_after))

    def delay_rest(
        self,
        verb: str | None = None,
        *,
        seconds: float,
        times: int | None = 1,
        call_id: str | None = None,
    ) -> None:
        """The next ``times`` matching REST requests are answered ``seconds`` late."""
        self.add(RestFault(verb, None, times, call_id, latency=seconds))

    def refuse_sideband(
        self, *, status: int = 503, times: int | None = 1, call_id: str | None = None
    ) -> None:
        """The next ``times`` matching sideband handshakes are refused with ``status``."""
        self.add(SidebandFault(refuse_status=status, times=times, call_id=call_id))

    def drop_sideband(
        self,
        *,
        after_events: int,
        code: int = 1006,
        times: int | None = 1,
        call_id: str | None = None,
    ) -> None:
        """The next ``times`` matching sidebands drop after ``after_events`` server events."""
        fault = SidebandFault(
            drop_after_events=after_events, close_code=code, times=times, call_id=call_id
        )
        self.add(fault)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """The faults still armed."""
        with self._lock:
            return list(self._faults)

    def take_rest(self, verb: str, call_id: str) -> RestFault | None:
        """Use up the first REST fault matching this request, if any."""
        found = self._take(RestFault, call_id, lambda f: f.verb in (None, verb))
        return found if isinstance(found, RestFault) else None

    def take_sideband(self, call_id: str) -> SidebandFault | None:
        """Use up the first sideband fault matching an attach to ``call_id``, if any."""
        found = self._take(SidebandFault, call_id, lambda f: True)
        return found if isinstance(found, SidebandFault) else None

    def _take(self, kind: type, call_id: str, matches: Any) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if isinstance(fault, kind) and fault.call_id in (None, call_id) and matches(fault):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


def fault_from_json(data: Mapping[str, Any]) -> Fault:
    """A fault from ``{"kind": "rest" | "sideband", <fields>}``; ``ValueError`` if invalid."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    kinds: dict[str, type[RestFault] | type[SidebandFault]] = {
        "rest": RestFault,
        "sideband": SidebandFault,
    }
    cls = kinds.get(str(data.get("kind")))
    if cls is None:
        raise ValueError(f"fault kind must be 'rest' or 'sideband', not {data.get('kind')!r}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ValueError(f"invalid {data['kind']} fault: {exc}") from exc
