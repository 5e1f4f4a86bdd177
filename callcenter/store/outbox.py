"""The notification outbox: one row per event and receiver, kept until it is delivered.

Rows are written in the transaction that makes the event true (a call's end in
``Store._transition``, an escalation in ``Store.record_handoff``), so an event exists exactly
when its cause does; ``dedupe`` (unique) makes a replayed write harmless. Any worker on any
node delivers: :meth:`OutboxStore.claim` hands each due row to one claimer for a while
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single write lock does the same), so
one delivery of an event is in flight at a time, and a claimer that dies loses its rows
when ``claimed_until`` passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from callcenter.call.vocabulary import DeliveryStatus
from callcenter.store.engine import padded_chunks, transaction
from callcenter.store.schema import notifications

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "Notification",
    "OutboxStore",
    "Subscribers",
    "enqueue",
]

PENDING: Final = DeliveryStatus.PENDING
DELIVERED: Final = DeliveryStatus.DELIVERED
FAILED: Final = DeliveryStatus.FAILED  # ``callcenter notify retry`` makes it pending again

# Which receivers (URLs) take an event type for a call on a route.
Subscribers = Callable[[str, str | None], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Notification:
    """One row of the outbox."""

    id: int
    event_id: str
    type: str
    call_id: str
    url: str
    data: dict[str, Any] | None
    created_at: datetime
    status: str
    attempts: int
    next_at: datetime
    last_answer: str | None
    delivered_at: datetime | None


_INSERT: Final = {
    "postgresql": postgresql.insert(notifications).on_conflict_do_nothing(
        index_elements=["dedupe"]
    ),
    "sqlite": sqlite.insert(notifications).on_conflict_do_nothing(index_elements=["dedupe"]),
}


def enqueue(
    conn: Connection,
    subscribers: Subscribers,
    *,
    event_type: str,
    call_id: str,
    route: str | None,
    at: datetime,
    data: Mapping[str, Any] | None = None,
    distinct: str = "",
) -> None:
    """Queue ``event_type`` of a call for every receiver that wants it, inside ``conn``.

    ``distinct`` tells apart several events of one type on a call (an escalation's ticket);
    the same event queued twice for a receiver is one row.
    """
    urls = subscribers(event_type, route)
    if not urls:
        return
    event_id = f"evt_{uuid.uuid4().hex}"
    rows = [
        {
            "event_id": event_id,
            "dedupe": f"{event_type}|{call_id}|{distinct}|{url}",
            "type": event_type,
            "call_id": call_id,
            "url": url,
            "data": None if data is None else dict(data),
            "created_at": at,
            "status": PENDING,
            "attempts": 0,
            "next_at": at,
        }
        for url in urls
    ]
    conn.execute(_INSERT[conn.dialect.name], rows)


class OutboxStore:
    """The notifications table on a store's engine; safe to share between threads.

    Build it with ``OutboxStore(store.engine, store.subscribers)``.
    """

    def __init__(self, engine: Engine, subscribers: Subscribers) -> None:
        self._engine = engine
        self._subscribers = subscribers

    def add(
        self,
        *,
        event_type: str,
        call_id: str,
        route: str | None,
        at: datetime,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue an event that no other write makes true (a finished analysis)."""
        with transaction(self._engine, "add_notification", write=True) as conn:
            enqueue(
                conn,
                self._subscribers,
                event_type=event_type,
                call_id=call_id,
                route=route,
                at=at,
                data=data,
            )

    def claim(
        self,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int = 10,
        url: str | None = None,
        other_than: Sequence[str] = (),
    ) -> list[Notification]:
        """Up to ``limit`` due rows, held by ``owner`` until ``until`` (one attempt each).

        ``url`` claims only that receiver's rows; ``other_than`` only rows for none of those
        receivers (events queued for a receiver the config no longer names).
        """
        due = [
            notifications.c.status == PENDING,
            notifications.c.next_at <= now,
            or_(
                notifications.c.claimed_until.is_(None),
                notifications.c.claimed_until <= now,
            ),
        ]
        if url is not None:
            due.append(notifications.c.url == url)
        if other_than:
            due.append(notifications.c.url.not_in(other_than))
        with transaction(self._engine, "peek_notifications", write=False) as conn:
            # A look first, so that an idle outbox never takes SQLite's write lock.
            if conn.execute(select(notifications.c.id).where(*due).limit(1)).first() is None:
                return []
        query = (
            select(notifications.c.id)
            .where(*due)
            .order_by(notifications.c.next_at, notifications.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with transaction(self._engine, "claim_notifications", write=True) as conn:
            ids = list(conn.execute(query).scalars())
            if not ids:
                return []
            rows: list[Row[Any]] = []
            for chunk in padded_chunks(ids):  # in the claim's order, chunk after chunk
                conn.execute(
                    update(notifications)
                    .where(notifications.c.id.in_(chunk))
                    .values(
                        claimed_by=owner,
                        claimed_until=until,
                        attempts=notifications.c.attempts + 1,
                    )
                )
                rows += conn.execute(
                    select(notifications)
                    .where(notifications.c.id.in_(chunk))
                    .order_by(notifications.c.next_at, notifications.c.id)
                ).all()
        return [_record(row) for row in rows]

    def finish(
        self,
        row_id: int,
        *,
        owner: str,
        status: str,
        answer: str,
        at: datetime,
        next_at: datetime | None = None,
    ) -> bool:
        """Record an attempt's end; False when ``owner`` no longer held the row."""
        values: dict[str, Any] = {
            "status": status,
            "last_answer": answer,
            "claimed_by": None,
            "claimed_until": None,
        }
        if status == DELIVERED:
            values["delivered_at"] = at
        if next_at is not None:
            values["next_at"] = next_at
        with transaction(self._engine, "finish_notification", write=True) as conn:
            result = conn.execute(
                update(notifications)
                .where(notifications.c.id == row_id, notifications.c.claimed_by == owner)
                .values(**values)
            )
        return result.rowcount > 0

    def retry(self, *, now: datetime, call_id: str | None = None) -> int:
        """Make every failed row (of one call, or all) due again at ``now``; how many."""
        statement = update(notifications).where(notifications.c.status == FAILED)
        if call_id is not None:
            statement = statement.where(notifications.c.call_id == call_id)
        with transaction(self._engine, "retry_notifications", write=True) as conn:
            result = conn.execute(statement.values(status=PENDING, next_at=now, attempts=0))
        return int(result.rowcount)

    def list(
        self, *, call_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Notification]:
        """Rows newest first, of one call or status when given."""
        query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if call_id is not None:
            query = query.where(notifications.c.call_id == call_id)
        if status is not None:
            query = query.where(notifications.c.status == status)
        with transaction(self._engine, "list_notifications", write=False) as conn:
            rows = conn.execute(query).all()
        return [_record(row) for row in rows]


def _record(row: Any) -> Notification:
    m = row._mapping
    return Notification(
        id=m["id"],
        event_id=m["event_id"],
        type=m["type"],
        call_id=m["call_id"],
        url=m["url"],
        data=m["data"],
        created_at=m["created_at"],
        status=m["status"],
        attempts=m["attempts"],
        next_at=m["next_at"],
        last_answer=m["last_answer"],
        delivered_at=m["delivered_at"],
    )
