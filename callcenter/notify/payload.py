"""The body of a notification: ``{"type", "id", "created_at", "data"}``, built from the store.

``data`` is what the operator API answers for the call (its timeline, without the raw event
list), plus what the event itself adds (an escalation's ticket, an analysis).
"""

from __future__ import annotations

import json
from typing import Any

from callcenter.operators.views import timeline_json
from callcenter.store import Store
from callcenter.store.outbox import Notification

__all__ = ["body"]


def body(store: Store, notification: Notification) -> str | None:
    """The JSON body of ``notification``; None when its call is no longer in the store."""
    call = store.get_call(notification.call_id)
    if call is None:
        return None
    data: dict[str, Any] = timeline_json(
        call, store.events(call.call_id), store.transcript(call.call_id)
    )
    del data["events"]
    data.update(notification.data or {})
    document = {
        "type": notification.type,
        "id": notification.event_id,
        "created_at": int(notification.created_at.timestamp()),
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), default=str)
