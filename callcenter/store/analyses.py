"""Post-call analyses in the ``calls`` table: queued at a call's end, claimed, answered.

A call of an analysed route ends with ``analysis_status = "pending"`` (``Store._transition``).
Any worker claims one for a while (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write
lock elsewhere); its result is saved with its ``call.analyzed`` notification in one
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine, or_, select, update

from callcenter.store.calls import call_record
from callcenter.store.engine import transaction
from callcenter.store.outbox import Subscribers, enqueue
from callcenter.store.records import CallRecord
from callcenter.store.schema import calls

__all__ = ["DONE", "FAILED", "PENDING", "AnalysisStore"]

PENDING: Final = "pending"
DONE: Final = "done"
FAILED: Final = "failed"


class AnalysisStore:
    """The analysis columns of calls on a store's engine; safe to share between threads."""

    def __init__(self, engine: Engine, subscribers: Subscribers) -> None:
        self._engine = engine
        self._subscribers = subscribers

    def claim(self, *, now: datetime, until: datetime) -> CallRecord | None:
        """One call waiting for its analysis, now held until ``until``; None if none waits."""
        waiting = (
            select(calls.c.call_id)
            .where(
                calls.c.analysis_status == PENDING,
                or_(calls.c.analysis_until.is_(None), calls.c.analysis_until <= now),
            )
            .order_by(calls.c.ended_at)
            .limit(1)
        )
        with transaction(self._engine, "peek_analysis", write=False) as conn:
            # Polled every second by every process: look before taking the write lock.
            if conn.execute(waiting).first() is None:
                return None
        with transaction(self._engine, "claim_analysis", write=True) as conn:
            call_id = conn.execute(waiting.with_for_update(skip_locked=True)).scalar_one_or_none()
            if call_id is None:
                return None
            conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id)
                .values(analysis_until=until, analysis_attempts=calls.c.analysis_attempts + 1)
            )
            row = conn.execute(select(calls).where(calls.c.call_id == call_id)).one()
        return call_record(row)

    def save(self, call: CallRecord, result: Mapping[str, Any], *, at: datetime) -> None:
        """Store the analysis and queue its ``call.analyzed``, together."""
        with transaction(self._engine, "save_analysis", write=True) as conn:
            conn.execute(
                update(calls)
                .where(calls.c.call_id == call.call_id)
                .values(analysis=dict(result), analysis_status=DONE, analysis_until=None)
            )
            enqueue(
                conn,
                self._subscribers,
                event_type="call.analyzed",
                call_id=call.call_id,
                route=call.route,
                at=at,
                data={"analysis": dict(result)},
            )

    def failed(self, call_id: str, *, give_up: bool, retry_at: datetime) -> None:
        """An attempt failed: try again at ``retry_at``, or give up for good."""
        values: dict[str, Any] = {"analysis_until": retry_at}
        if give_up:
            values = {"analysis_status": FAILED, "analysis_until": None}
        with transaction(self._engine, "fail_analysis", write=True) as conn:
            conn.execute(update(calls).where(calls.c.call_id == call_id).values(**values))
