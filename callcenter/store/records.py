"""What goes into the store and what comes back out: plain frozen dataclasses, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final

RINGING: Final = "ringing"
ACTIVE: Final = "active"
REJECTED: Final = "rejected"
REFERRED: Final = "referred"
ENDED: Final = "ended"
FAILED: Final = "failed"

#: Statuses that hold a slot against the concurrency cap.
LIVE_STATUSES: Final = (RINGING, ACTIVE)
#: Statuses ``mark_answered`` may set once accept/reject/refer succeeded.
ANSWERED_STATUSES: Final = (ACTIVE, REJECTED, REFERRED)


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

    decision: str  # "accept" | "reject" | "refer"
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
    decision: str
    decision_reason: str
    reject_code: int | None
    target: str | None
    status: str
    outcome: str | None
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


@dataclass(frozen=True)
class CallEvent:
    """One row of ``call_events``: something that happened during a call, in ``id`` order."""

    id: int
    call_id: str
    at: datetime
    kind: str
    data: dict[str, object]


@dataclass(frozen=True)
class NewEvent:
    """An event to append to a call's history (see :meth:`Store.add_events`).

    ``place``, when given, names the event uniquely: a second event with the same place is
    not stored (a recorder replaying what it may already have written).
    """

    call_id: str
    kind: str
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
