"""Standard Webhooks signatures: the headers that let any receiver's library verify a body."""

from __future__ import annotations

from datetime import datetime
from math import floor

from standardwebhooks.webhooks import Webhook

__all__ = ["signed_headers"]


def signed_headers(secret: str, *, event_id: str, at: datetime, body: str) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (``v1,…``) for ``body``.

    ``secret`` is a ``whsec_…`` secret; ``event_id`` stays the same across retries, so a
    receiver drops the copies it already took.
    """
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=at, data=body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "callcenter-notify/1",
    }
