"""What goes into the store and what comes back out: plain frozen dataclasses, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from callcenter.call.vocabulary import CallOutcome, CallStatus, DecisionKind, EventKind


@dataclass(frozen=True)
class NewCall:
    """What intake knows about a call when its ``realtime.call.incoming`` webhook arrives."""

    call_id: str
    webhook_id: str
    event_id: str
    received_at: datetime
    caller_number: str | None
    caller_uri: str | None
    caller_name: str | None
    dialled_number: str | None
    dialled_uri: str | None
    sip_headers: list[tuple[str, str]]
    media_security: str | None


@dataclass(frozen=True)
class DecisionRecord:
    """The routing decision stored with a claimed call."""

    decision: DecisionKind
    route: str | None
    reason: str
    reject_code: int | None
    target: str | None


class ClaimResult(enum.Enum):
    """Whether this delivery of a webhook won the call."""

    CLAIMED = "claimed"
    DUPLICATE = "duplicate"  # another delivery owns, or owned, this call


@dataclass(frozen=True)
class CallRecord:
    """One row of ``calls``; timestamps are timezone-aware UTC."""

    call_id: str
    webhook_id: str
    received_at: datetime
    caller_number: str | None
    caller_uri: str | None
    caller_name: str | None
    dialled_number: str | None
    dialled_uri: str | None
    sip_headers: tuple[tuple[str, str], ...]
    media_security: str | None
    route: str | None
    decision: DecisionKind
    decision_reason: str
    reject_code: int | None
    target: str | None
    status: CallStatus
    outcome: CallOutcome | None
    claimed_at: datetime
    decided_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    owner: str | None
    error: str | None
    updated_at: datetime
    ticket: str | None = None
    escalation_trigger: str | None = None
    summary: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage: dict[str, object] | None = None
    latency: dict[str, object] | None = None  # greeting_ms, turn_ms (callcenter.call.latency)
    analysis: dict[str, object] | None = None  # the post-call analysis, once done
    analysis_status: str | None = None  # pending | done | failed; None without analysis
    analysis_until: datetime | None = None
    analysis_attempts: int | None = None


@dataclass(frozen=True)
class CallEvent:
    """One row of ``call_events``: something that happened during a call, in ``id`` order."""

    id: int
    call_id: str
    at: datetime
    kind: str  # an EventKind, or a kind written by an older version
    data: dict[str, object]


@dataclass(frozen=True)
class NewEvent:
    """An event to append to a call's history (see :meth:`Store.add_events`).

    ``place``, when given, names the event uniquely: a second event with the same place is
    not stored (a recorder replaying what it may already have written).
    """

    call_id: str
    kind: EventKind
    data: dict[str, object]
    at: datetime
    place: str | None = None


@dataclass(frozen=True)
class WebhookEventRecord:
    """One webhook delivery as seen by the store, with how many copies arrived."""

    webhook_id: str
    event_id: str
    event_type: str
    call_id: str | None
    received_at: datetime
    deliveries: int
    last_seen_at: datetime
