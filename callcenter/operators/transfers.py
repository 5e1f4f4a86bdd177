"""A call's transfer attempts, read from its events, and the wait for an operator's transfer.

A REFER's 200 only says it was relayed, so an operator's transfer is over when the call
left us (``transferred``) or every target failed (``transfer_failed``); the API waits for
that, boundedly (:func:`await_transfer`), and answers with the targets tried. The call
record lists the same attempts (:func:`transfer_attempts`). Pure but for the wait.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from callcenter.call.departure import ATTEMPT_KINDS
from callcenter.call.escalation import transfer_chain
from callcenter.call.vocabulary import CallStatus, EventKind
from callcenter.config.loader import Config
from callcenter.store import CallEvent, Store

__all__ = [
    "TRANSFERRING",
    "TransferReport",
    "await_transfer",
    "last_event_id",
    "transfer_attempts",
    "transfer_report",
    "transfer_wait",
]

TRANSFERRING: Final = "transferring"  # the transfer is still under way
HANDOFF_BOUND: Final = 15.0  # s: the handoff line and summary, before the first REFER
MAX_TRANSFER_WAIT: Final = 120.0  # s an API request waits at most for a transfer to end


@dataclass(frozen=True, slots=True)
class TransferReport:
    """How an operator's transfer went: ``result`` and the attempts, in order."""

    result: str  # transferred | transfer_failed | escalation_unavailable | transferring | …
    attempts: list[dict[str, object]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        """The transfer is over, one way or the other."""
        return self.result != TRANSFERRING

    @property
    def target(self) -> str | None:
        """Where the call went, when it was transferred."""
        if self.result != EventKind.TRANSFERRED or not self.attempts:
            return None
        target = self.attempts[-1]["target"]
        return str(target) if target is not None else None


def transfer_attempts(events: Sequence[CallEvent]) -> list[dict[str, object]]:
    """One entry per REFER of the call: target, URI, result, reason and times."""
    attempts: list[dict[str, object]] = []
    for event in events:
        if event.kind not in ATTEMPT_KINDS:
            continue
        data = event.data
        seconds = data.get("seconds")
        started = (
            event.at - timedelta(seconds=float(seconds))
            if isinstance(seconds, int | float)
            else None
        )
        attempts.append(
            {
                "target": data.get("target"),
                "uri": data.get("uri"),
                "result": data.get("result") or _RESULTS[EventKind(event.kind)],
                "reason": _reason(EventKind(event.kind), data),
                "started_at": started.isoformat() if started is not None else None,
                "ended_at": event.at.isoformat(),
            }
        )
    return attempts


_RESULTS: Final = {
    EventKind.TRANSFERRED: "transferred",
    EventKind.REFER_FAILED: "refused",
    EventKind.TRANSFER_UNANSWERED: "unanswered",
}


def _reason(kind: EventKind, data: dict[str, object]) -> str | None:
    if kind == EventKind.REFER_FAILED:
        status = data.get("status")
        return str(data.get("reason") or (f"HTTP {status}" if status else "refused"))
    if kind == EventKind.TRANSFER_UNANSWERED:
        return f"still with us after the answer timeout of {data.get('answer_timeout')} s"
    return None


def transfer_report(events: Sequence[CallEvent], status: CallStatus | None) -> TransferReport:
    """Where a transfer stands after ``events`` (those since it was asked for)."""
    attempts = transfer_attempts(events)
    for event in events:
        if event.kind in (
            EventKind.TRANSFERRED,
            EventKind.TRANSFER_FAILED,
            EventKind.ESCALATION_UNAVAILABLE,
        ):
            return TransferReport(str(event.kind), attempts)
    if status is not None and status != CallStatus.ACTIVE:  # the call ended another way
        return TransferReport(str(status), attempts)
    return TransferReport(TRANSFERRING, attempts)


def transfer_wait(config: Config, target: str) -> float:
    """How long to wait for a transfer to ``target``: its chain's answer timeouts, bounded."""
    try:
        chain = transfer_chain(config.targets, target)
    except ValueError:
        chain = ()
    answer = sum(t.answer_timeout for t in chain)
    return min(HANDOFF_BOUND + answer, MAX_TRANSFER_WAIT)


def last_event_id(calls: Store, call_id: str) -> int:
    """The id of the call's latest event (0 without any): a transfer's events come after."""
    events = calls.events(call_id)
    return events[-1].id if events else 0


def await_transfer(
    calls: Store, call_id: str, after_id: int, *, wait: float, poll: float = 0.1
) -> TransferReport:
    """Wait up to ``wait`` seconds for the transfer asked for after event ``after_id``."""
    deadline = time.monotonic() + wait
    while True:
        call = calls.get_call(call_id)
        report = transfer_report(
            calls.events(call_id, after_id=after_id), call.status if call else None
        )
        if report.final or time.monotonic() >= deadline:
            return report
        time.sleep(poll)
