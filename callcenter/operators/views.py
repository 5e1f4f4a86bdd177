"""What the operator API answers: calls, their timelines, events and audit rows as JSON. Pure."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime

from callcenter.call.latency import latency_summary
from callcenter.call.vocabulary import EventKind
from callcenter.operators.transfers import transfer_attempts
from callcenter.store import CallEvent, CallRecord
from callcenter.store.operators import AuditRecord
from callcenter.store.outbox import Notification

__all__ = [
    "TOOL_KINDS",
    "audit_json",
    "call_json",
    "deliveries_json",
    "decode_cursor",
    "encode_cursor",
    "event_json",
    "timeline_json",
]

TOOL_KINDS = (
    EventKind.TOOL,
    EventKind.MCP_CALL,
    EventKind.MCP_APPROVAL,
    EventKind.MCP_LIST_TOOLS_FAILED,
)
ESCALATION_KINDS = (
    EventKind.ESCALATION,
    EventKind.ESCALATION_UNAVAILABLE,
    EventKind.HANDOFF_ABANDONED,
)
TRANSFER_KINDS = (
    EventKind.TRANSFERRED,
    EventKind.REFER_FAILED,
    EventKind.TRANSFER_UNANSWERED,
    EventKind.TRANSFER_FAILED,
)
OPERATOR_KINDS = (EventKind.OPERATOR_INSTRUCTION, EventKind.OPERATOR_INSTRUCTION_IGNORED)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def call_json(call: CallRecord) -> dict[str, object]:
    """A call's record, as listed."""
    return {
        "call_id": call.call_id,
        "status": call.status,
        "route": call.route,
        "decision": call.decision,
        "outcome": call.outcome,
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "dialled_number": call.dialled_number,
        "target": call.target,
        "ticket": call.ticket,
        "escalation_trigger": call.escalation_trigger,
        "received_at": _time(call.received_at),
        "answered_at": _time(call.answered_at),
        "ended_at": _time(call.ended_at),
    }


def event_json(event: CallEvent) -> dict[str, object]:
    """One stored call event."""
    return {"id": event.id, "at": event.at.isoformat(), "kind": event.kind, "data": event.data}


def timeline_json(
    call: CallRecord, events: Sequence[CallEvent], transcript: Sequence[CallEvent]
) -> dict[str, object]:
    """Everything the store knows of one call, grouped the way a supervisor reads it."""

    def of(kinds: tuple[EventKind, ...]) -> list[dict[str, object]]:
        return [event_json(e) for e in events if e.kind in kinds]

    return {
        **call_json(call),
        "caller_uri": call.caller_uri,
        "dialled_uri": call.dialled_uri,
        "sip_headers": [[name, value] for name, value in call.sip_headers],
        "media_security": call.media_security,
        "decision_detail": {
            "decision": call.decision,
            "reason": call.decision_reason,
            "route": call.route,
            "reject_code": call.reject_code,
            "target": call.target,
            "decided_at": _time(call.decided_at),
        },
        "transcript": [{**line.data, "at": line.at.isoformat()} for line in transcript],
        "tool_calls": of(TOOL_KINDS),
        "dtmf": of((EventKind.DTMF,)),
        "escalations": of(ESCALATION_KINDS),
        "handoff": {
            "ticket": call.ticket,
            "trigger": call.escalation_trigger,
            "summary": call.summary,
        },
        "transfer": of(TRANSFER_KINDS),
        "transfers": transfer_attempts(events),
        "operator": of(OPERATOR_KINDS),
        "end": {"outcome": call.outcome, "ended_at": _time(call.ended_at), "error": call.error},
        "usage": call.usage,
        "latency": latency_summary(call.latency),
        "analysis": call.analysis,
        "events": [event_json(e) for e in events],
    }


def deliveries_json(rows: Sequence[Notification]) -> list[dict[str, object]]:
    """A call's notifications: pending, delivered or failed, with the receiver's last answer."""
    return [
        {
            "event_id": row.event_id,
            "type": row.type,
            "url": row.url,
            "status": row.status,
            "attempts": row.attempts,
            "next_at": None if row.status != "pending" else row.next_at.isoformat(),
            "last_answer": row.last_answer,
            "delivered_at": _time(row.delivered_at),
        }
        for row in rows
    ]


def audit_json(row: AuditRecord) -> dict[str, object]:
    """One audit row."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "operator": row.operator,
        "action": row.action,
        "call_id": row.call_id,
        "result": row.result,
        "client": row.client,
        "detail": row.detail,
    }


def encode_cursor(call: CallRecord) -> str:
    """An opaque cursor for the page after ``call``."""
    raw = json.dumps([call.received_at.isoformat(), call.call_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(received_at, call_id)`` of a cursor; ValueError if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, call_id = json.loads(raw)
        parsed = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor from this API") from exc
    if parsed.tzinfo is None or not isinstance(call_id, str):
        raise ValueError("not a cursor from this API")
    return parsed, call_id
