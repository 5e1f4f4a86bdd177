"""The store: calls, call events and webhook deliveries (SQLite by default, or PostgreSQL)."""

from __future__ import annotations

from callcenter.store.calls import Store
from callcenter.store.engine import default_sqlite_url
from callcenter.store.records import (
    CallEvent,
    CallRecord,
    ClaimResult,
    DecisionRecord,
    NewCall,
    NewEvent,
    WebhookEventRecord,
)

__all__ = [
    "CallEvent",
    "CallRecord",
    "ClaimResult",
    "DecisionRecord",
    "NewCall",
    "NewEvent",
    "Store",
    "WebhookEventRecord",
    "default_sqlite_url",
]
