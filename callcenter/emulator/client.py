"""A client of a running emulator's control API (``/_emulator/``, see ``control``).

``callcenter simulate --emulator URL`` drives the emulator of another process with it (a
``callcenter demo --keep``'s, or ``callcenter emulator``): it arms faults, places calls,
hangs up, and reads each call's records back as an :class:`EmulatedCall`. Every failure,
an emulator that does not answer or a request it refuses, is an
:class:`~callcenter.errors.UnreachableError` naming the URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from callcenter.emulator.faults import Fault, fault_kind
from callcenter.emulator.script import Step, step_to_json
from callcenter.emulator.state import CallState, EmulatedCall
from callcenter.emulator.webhooks import Delivery
from callcenter.errors import UnreachableError

__all__ = ["ControlClient", "EmulatorInfo"]

TIMEOUT = 5.0
LIVE_STATES = frozenset({CallState.RINGING, CallState.ACCEPTED})


@dataclass(frozen=True)
class EmulatorInfo:
    """How the emulator delivers a call's ``realtime.call.incoming``: where, and how often."""

    webhook_targets: tuple[str, ...]
    max_attempts: int


class ControlClient:
    """The control API of the emulator serving at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def info(self) -> EmulatorInfo:
        """Where its calls' webhooks go; an UnreachableError if it does not answer as an
        emulator."""
        answer = self._send("GET", "/_emulator")
        if answer.status_code == httpx.codes.NOT_FOUND:
            raise self._unreachable("answered 404 to GET /_emulator: not an emulator")
        body = self._body("GET", "/_emulator", answer)
        try:
            return EmulatorInfo(
                tuple(body["webhook_targets"]), int(body["redelivery"]["max_attempts"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unreachable("does not answer as an emulator") from exc

    def add_fault(self, fault: Fault) -> None:
        """Arm ``fault``."""
        self._request("POST", "/_emulator/faults", {"kind": fault_kind(fault), **_plain(fault)})

    def place_call(
        self,
        *,
        from_number: str,
        to_number: str,
        caller_name: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        script: Iterable[Step] = (),
        call_id: str | None = None,
        delivery: Delivery | None = None,
        server_timings: str | None = None,
    ) -> EmulatedCall:
        """Ring a new call; the call as the emulator recorded it."""
        body: dict[str, Any] = {
            "from_number": from_number,
            "to_number": to_number,
            "caller_name": caller_name,
            "headers": [list(pair) for pair in headers],
            "script": [step_to_json(step) for step in script],
            "call_id": call_id,
            "delivery": _plain(delivery) if delivery is not None else None,
            "server_timings": server_timings,
        }
        placed = self._request("POST", "/_emulator/calls", body)
        return self.call(str(placed["call"]["call_id"]))

    def call(self, call_id: str) -> EmulatedCall:
        """One call with all its records, as of now."""
        return EmulatedCall.from_json(self._request("GET", f"/_emulator/calls/{call_id}")["call"])

    def live_calls(self) -> list[str]:
        """The calls still ringing or answered, or with a sideband still attached."""
        calls = self._request("GET", "/_emulator/calls")["calls"]
        return [str(c["call_id"]) for c in calls if c["state"] in LIVE_STATES or c.get("attached")]

    def hang_up(self, call_id: str) -> bool:
        """The caller hangs up; False if the call was already over."""
        path = f"/_emulator/calls/{call_id}/hangup"
        answer = self._send("POST", path)
        if answer.status_code == httpx.codes.CONFLICT:
            return False
        self._body("POST", path, answer)
        return True

    def _request(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        return self._body(method, path, self._send(method, path, body))

    def _send(self, method: str, path: str, body: object = None) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(_reason(exc)) from exc

    def _body(self, method: str, path: str, answer: httpx.Response) -> dict[str, Any]:
        """The JSON object of a 2xx answer; an UnreachableError saying why for any other."""
        try:
            data = answer.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            reason = f"answered {answer.status_code}, not JSON: not an emulator"
            raise self._unreachable(reason)
        if answer.is_success:
            return data
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        raise self._unreachable(f"{method} {path} answered {answer.status_code}: {message or data}")

    def _unreachable(self, reason: str) -> UnreachableError:
        return UnreachableError("emulator", self.url, reason)


def _plain(value: Any) -> dict[str, Any]:
    """A dataclass as a JSON object."""
    return dataclasses.asdict(value)


def _reason(exc: httpx.HTTPError) -> str:
    """``connection refused``, ``timed out``...: the error in a few words."""
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"
