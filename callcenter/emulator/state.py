"""One emulated call: its state machine and everything recorded about it.

    ringing ──accept──▶ accepted ──refer, answered by the target──▶ referred
       │                   └──hangup (ours or the caller's)──▶ ended
       ├──reject──▶ rejected
       └──caller hangs up / rings out──▶ missed

Transitions are pure: each returns the :class:`ApiError` OpenAI would answer, or None and
moves the state. A REFER's 200 only says it was relayed: the call stays accepted until the
target answers (``referred``), and for good when it is busy or does not answer; every
REFER is kept in ``refer_attempts``. Closing sockets and delivering webhooks is the server's job.
"""

from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from callcenter.emulator.api_error import ApiError, not_found
from callcenter.emulator.script import Step, step_to_json, steps_from_json


class CallState(enum.StrEnum):
    """Where a call is in its life."""

    RINGING = "ringing"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    MISSED = "missed"
    REFERRED = "referred"
    ENDED = "ended"


@dataclass(frozen=True)
class RestRequest:
    """One request to a calls endpoint, as answered."""

    verb: str
    call_id: str
    body: Any
    status: int
    at: float


@dataclass(frozen=True)
class WebhookAttempt:
    """One POST of a webhook delivery (``status`` None: no answer in time, see ``error``).

    ``response_body`` is the start of the receiver's answer (its first 2 KiB), parsed as JSON
    when it is JSON, else the text; None without an answer.
    """

    webhook_id: str
    event_type: str
    attempt: int
    copy: int
    timestamp: int
    status: int | None
    error: str | None
    latency: float
    at: float
    response_body: Any = None


@dataclass(eq=False)
class EmulatedCall:
    """A phone call on OpenAI's side, and the record of what happened to it."""

    call_id: str
    from_number: str
    to_number: str
    caller_name: str | None = None
    sip_headers: list[dict[str, str]] = field(default_factory=list)
    script: tuple[Step, ...] = ()
    server_timings: str | None = None  # "realistic" | "none": the emulator's own when None
    state: CallState = CallState.RINGING
    created_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    ended_by: str | None = None
    accept_body: dict[str, Any] | None = None
    reject_code: int | None = None
    refer_target: str | None = None
    refer_attempts: list[dict[str, Any]] = field(default_factory=list)
    attaches: int = 0
    attached: bool = False  # a sideband socket is attached now (kept by its channel)
    client_events: list[dict[str, Any]] = field(default_factory=list)
    server_events: list[dict[str, Any]] = field(default_factory=list)
    webhook_attempts: list[WebhookAttempt] = field(default_factory=list)
    rest_requests: list[RestRequest] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)

    @property
    def is_live(self) -> bool:
        """Accepted and not over: a sideband may attach."""
        return self.state is CallState.ACCEPTED

    def accept(self, body: dict[str, Any]) -> ApiError | None:
        """Answer the call with the session config ``body``."""
        if self.state is CallState.ACCEPTED:
            return self._conflict("call_already_accepted", "has already been accepted")
        if self.state is not CallState.RINGING:
            return not_found(self.call_id)
        self.state, self.accept_body = CallState.ACCEPTED, body
        return None

    def reject(self, status_code: int) -> ApiError | None:
        """Decline the call with a SIP status code."""
        if self.state is CallState.ACCEPTED:
            return self._conflict("call_already_accepted", "has already been accepted")
        if self.state is not CallState.RINGING:
            return not_found(self.call_id)
        self.state, self.reject_code = CallState.REJECTED, status_code
        self._end("controller")
        return None

    def refer_problem(self) -> ApiError | None:
        """Why a REFER may not be relayed now, or None if it may."""
        return self._require_live()

    def refer(self, target_uri: str) -> ApiError | None:
        """The target ``target_uri`` took the transferred call: it leaves."""
        problem = self._require_live()
        if problem is None:
            self.state, self.refer_target = CallState.REFERRED, target_uri
            self._end("refer")
        return problem

    def hangup(self) -> ApiError | None:
        """End the answered call from our side."""
        problem = self._require_live()
        if problem is None:
            self.state = CallState.ENDED
            self._end("controller")
        return problem

    def caller_hangs_up(self) -> bool:
        """The caller hangs up: a ringing call is missed, a live one ends. False if over."""
        if self.state is CallState.RINGING:
            self.state = CallState.MISSED
        elif self.state is CallState.ACCEPTED:
            self.state = CallState.ENDED
        else:
            return False
        self._end("caller")
        return True

    def ring_out(self) -> bool:
        """Nobody answered in time: a ringing call is missed. False if it was not ringing."""
        if self.state is not CallState.RINGING:
            return False
        self.state = CallState.MISSED
        self._end("timeout")
        return True

    def attach_problem(self) -> ApiError | None:
        """Why a sideband may not attach now, or None if it may."""
        if self.state is CallState.RINGING:
            return self._conflict("call_not_accepted", "has not been accepted yet")
        if self.state is not CallState.ACCEPTED:
            return not_found(self.call_id)
        return None

    def summary(self) -> dict[str, Any]:
        """State and outcome, JSON-ready (no event records)."""
        return {
            "call_id": self.call_id,
            "state": self.state.value,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "caller_name": self.caller_name,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "ended_by": self.ended_by,
            "accept_body": self.accept_body,
            "reject_code": self.reject_code,
            "refer_target": self.refer_target,
            "refer_attempts": self.refer_attempts,
            "attaches": self.attaches,
            "attached": self.attached,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything about the call, JSON-ready."""
        return {
            **self.summary(),
            "sip_headers": self.sip_headers,
            "script": [step_to_json(step) for step in self.script],
            "script_errors": self.script_errors,
            "client_events": self.client_events,
            "server_events": self.server_events,
            "webhook_attempts": [asdict(a) for a in self.webhook_attempts],
            "rest_requests": [asdict(r) for r in self.rest_requests],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmulatedCall:
        """The call :meth:`to_json` wrote (what the control API answers for one call)."""
        fields = dict(data)
        fields["state"] = CallState(fields["state"])
        fields["script"] = steps_from_json(fields["script"])
        fields["webhook_attempts"] = [WebhookAttempt(**a) for a in fields["webhook_attempts"]]
        fields["rest_requests"] = [RestRequest(**r) for r in fields["rest_requests"]]
        return cls(**fields)

    def _require_live(self) -> ApiError | None:
        if self.state is CallState.RINGING:
            return self._conflict("call_not_accepted", "has not been accepted yet")
        if self.state is not CallState.ACCEPTED:
            return not_found(self.call_id)
        return None

    def _conflict(self, code: str, what: str) -> ApiError:
        return ApiError(409, f"Call '{self.call_id}' {what}.", code=code, param="call_id")

    def _end(self, by: str) -> None:
        self.ended_by, self.ended_at = by, time.time()
