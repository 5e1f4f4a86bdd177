"""Fault injection: failing or slow REST answers, refused or dropped sidebands, and how the
far end of a transfer behaves.

Faults are plain data added to the emulator's :class:`FaultPlan`; each applies to the next
``times`` matching requests (``None``: all of them) of one call or of every call. A fault is
used up when it fires. A :class:`TransferFault` scripts what a REFER to one target does;
a target nobody scripted answers after :data:`DEFAULT_TRANSFER_ANSWER` seconds.
Webhook faults (duplicates, late timestamps, wrong secrets) are options of each delivery
instead (see ``webhooks.Delivery``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from callcenter.emulator.api_error import ApiError

REST_VERBS = frozenset({"accept", "reject", "refer", "hangup"})
TransferResult = Literal["answered", "busy", "no_answer", "refused"]
TRANSFER_RESULTS: tuple[TransferResult, ...] = ("answered", "busy", "no_answer", "refused")
DEFAULT_TRANSFER_ANSWER = 0.05  # seconds until an unscripted target takes a transferred call


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


@dataclass
class TransferFault:
    """What the next matching REFERs to ``target`` do (``target`` None: any target).

    ``answered``: the REFER gets its 200 and ``after`` seconds later the call leaves (it
    is referred; the sideband closes). ``busy`` and ``no_answer``: a 200, and the call stays
    with us, its sideband open, as OpenAI shows a transfer that never happened. ``refused``:
    ``/refer`` answers ``status`` (a 4xx or 5xx). A target matches the REFER's URI without
    its ``?headers`` part.
    """

    target: str | None = None
    result: TransferResult = "answered"
    after: float = DEFAULT_TRANSFER_ANSWER
    status: int = 403
    times: int | None = 1
    call_id: str | None = None

    def __post_init__(self) -> None:
        if self.result not in TRANSFER_RESULTS:
            raise ValueError(
                f"TransferFault result must be one of {', '.join(TRANSFER_RESULTS)}, "
                f"not {self.result!r}"
            )
        if not 400 <= self.status <= 599:
            raise ValueError(f"TransferFault status must be 400-599, not {self.status!r}")
        if self.after < 0:
            raise ValueError("TransferFault after must not be negative")

    def matches(self, target_uri: str) -> bool:
        """Whether a REFER to ``target_uri`` is one this fault scripts."""
        return self.target is None or self.target == target_uri.split("?", 1)[0]

    def error(self) -> ApiError:
        """The answer of a refused REFER."""
        return RestFault("refer", self.status).error()


Fault = RestFault | SidebandFault | TransferFault
FAULT_KINDS: dict[str, type[Fault]] = {
    "rest": RestFault,
    "sideband": SidebandFault,
    "transfer": TransferFault,
}


def fault_kind(fault: Fault) -> str:
    """The ``kind`` that names ``fault`` in JSON and scenario files."""
    return next(kind for kind, cls in FAULT_KINDS.items() if isinstance(fault, cls))


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

    def script_transfer(
        self,
        target: str | None,
        result: TransferResult,
        *,
        after: float = DEFAULT_TRANSFER_ANSWER,
        status: int = 403,
        times: int | None = 1,
        call_id: str | None = None,
    ) -> None:
        """The next ``times`` REFERs to ``target`` end with ``result`` (see TransferFault)."""
        self.add(TransferFault(target, result, after, status, times, call_id))

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

    def take_transfer(self, call_id: str, target_uri: str) -> TransferFault | None:
        """Use up the first transfer fault matching a REFER of ``call_id`` to ``target_uri``."""
        found = self._take(TransferFault, call_id, lambda f: f.matches(target_uri))
        return found if isinstance(found, TransferFault) else None

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
    """A fault from ``{"kind": "rest" | "sideband" | "transfer", <fields>}``; ``ValueError``
    if invalid."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    cls = FAULT_KINDS.get(str(data.get("kind")))
    if cls is None:
        raise ValueError(
            f"fault kind must be 'rest', 'sideband' or 'transfer', not {data.get('kind')!r}"
        )
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ValueError(f"invalid {data['kind']} fault: {exc}") from exc
