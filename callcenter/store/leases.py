"""Sideband leases: which process holds each live call, until when, and what it needs to resume.

A claim writes the call's lease for the claiming process (``Store.claim_call``), so holding
the call after the accept writes nothing; that process renews all its leases in one
statement every few seconds, and writes the session's resume state beside them when it
changes. A lease past its ``expires_at``
belongs to a holder that died (or stalled): any live worker, on any node, may take the
call over. PostgreSQL hands each expired lease to exactly one taker with ``FOR UPDATE
SKIP LOCKED``; SQLite's single write lock does the same. A lease released on a drain
expires at once, and on PostgreSQL a ``NOTIFY`` on :data:`CHANNEL` wakes the takers
(:class:`~callcenter.store.wakeups.Listener`).
A call that ends loses its lease in the same transaction (``Store._transition``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine, and_, bindparam, delete, insert, select, update

from callcenter.call.vocabulary import CallOutcome, CallStatus
from callcenter.store.calls import Store, call_record
from callcenter.store.engine import padded_chunks, transaction
from callcenter.store.records import CallRecord
from callcenter.store.schema import calls, leases
from callcenter.store.wakeups import notify

__all__ = ["CHANNEL", "LeaseStore", "TakenCall"]

logger = logging.getLogger(__name__)

CHANNEL: Final = "callcenter_leases"  # PostgreSQL NOTIFY channel: a lease was released


@dataclass(frozen=True, slots=True)
class TakenCall:
    """A call whose expired lease this process now holds, with its last resume state."""

    record: CallRecord
    state: dict[str, Any] | None
    previous_owner: str
    takeovers: int


class LeaseStore:
    """The leases table on a :class:`Store`'s engine; safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine

    @property
    def engine(self) -> Engine:
        """The store's engine (the listener opens its own connection on it)."""
        return self._engine

    def renew(
        self, call_ids: Collection[str], *, owner: str, now: datetime, until: datetime
    ) -> set[str]:
        """Renew ``owner``'s unexpired leases among ``call_ids``; return those renewed.

        A lease that expired, or was taken over, is not revived: its call is someone
        else's to take now, and the caller must let it go.
        """
        if not call_ids:
            return set()
        renewed: set[str] = set()
        with transaction(self._engine, "renew_leases", write=True) as conn:
            for chunk in padded_chunks(call_ids):
                statement = (
                    update(leases)
                    .where(
                        leases.c.owner == owner,
                        leases.c.expires_at > now,
                        leases.c.call_id.in_(chunk),
                    )
                    .values(expires_at=until)
                    .returning(leases.c.call_id)
                )
                renewed.update(conn.execute(statement).scalars())
        return renewed

    def save_states(self, states: Mapping[str, Mapping[str, Any]], *, owner: str) -> None:
        """Write the resume state of calls ``owner`` holds (one statement for all of them)."""
        if not states:
            return
        rows = [{"id": call_id, "me": owner, "new_state": dict(s)} for call_id, s in states.items()]
        with transaction(self._engine, "save_states", write=True) as conn:
            conn.execute(_SAVE_STATE, rows)

    def release(
        self,
        states: Mapping[str, Mapping[str, Any] | None],
        *,
        owner: str,
        now: datetime,
    ) -> None:
        """Hand calls over: write their last state (when given) and expire their leases now.

        On PostgreSQL the takers are woken at commit (``NOTIFY``).
        """
        if not states:
            return
        with transaction(self._engine, "release_leases", write=True) as conn:
            saved = [
                {"id": call_id, "me": owner, "new_state": dict(state)}
                for call_id, state in states.items()
                if state is not None
            ]
            if saved:
                conn.execute(_SAVE_STATE, saved)
            for chunk in padded_chunks(states):
                conn.execute(
                    update(leases)
                    .where(leases.c.owner == owner, leases.c.call_id.in_(chunk))
                    .values(expires_at=now)
                )
            notify(conn, CHANNEL, owner)

    def adopt_orphans(self, *, now: datetime) -> int:
        """Give an expired lease to every active call without one (rows from before leases)."""
        orphans = select(calls.c.call_id, calls.c.owner).where(
            calls.c.status == CallStatus.ACTIVE,
            ~select(leases.c.call_id).where(leases.c.call_id == calls.c.call_id).exists(),
        )
        with transaction(self._engine, "adopt_orphans", write=True) as conn:
            rows = conn.execute(orphans).all()
            if rows:
                conn.execute(
                    insert(leases),
                    [
                        {
                            "call_id": row.call_id,
                            "owner": row.owner or "unknown",
                            "expires_at": now,
                            "takeovers": 0,
                        }
                        for row in rows
                    ],
                )
        return len(rows)

    def expired(self, *, now: datetime, ringing_before: datetime) -> int:
        """How many calls wait for a taker (a cheap read before :meth:`take`)."""
        query = select(leases.c.call_id).join(calls, calls.c.call_id == leases.c.call_id)
        query = query.where(leases.c.expires_at <= now, _takeable(ringing_before)).limit(1)
        with transaction(self._engine, "expired_leases", write=False) as conn:
            return len(conn.execute(query).all())

    def take(
        self,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        ringing_before: datetime,
        limit: int,
    ) -> list[TakenCall]:
        """Take up to ``limit`` expired leases for ``owner``, each given to one taker only.

        Active calls are taken to be reattached; ringing ones claimed before
        ``ringing_before`` (their claimer died before the answer) to be resolved.
        """
        query = (
            select(leases.c.call_id, leases.c.owner, leases.c.state, leases.c.takeovers)
            .join(calls, calls.c.call_id == leases.c.call_id)
            .where(leases.c.expires_at <= now, _takeable(ringing_before))
            .order_by(leases.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=leases)
        )
        with transaction(self._engine, "take_leases", write=True) as conn:
            found = conn.execute(query).all()
            if not found:
                return []
            records: dict[str, CallRecord] = {}
            for ids in padded_chunks(row.call_id for row in found):
                conn.execute(
                    update(leases)
                    .where(leases.c.call_id.in_(ids))
                    .values(owner=owner, expires_at=until, takeovers=leases.c.takeovers + 1)
                )
                conn.execute(update(calls).where(calls.c.call_id.in_(ids)).values(owner=owner))
                records.update(
                    (row.call_id, call_record(row))
                    for row in conn.execute(select(calls).where(calls.c.call_id.in_(ids)))
                )
        return [
            TakenCall(records[row.call_id], row.state, row.owner, row.takeovers + 1)
            for row in found
            if row.call_id in records
        ]

    def resolve_unanswered(self, call_id: str, *, owner: str, now: datetime) -> bool:
        """End a call its dead claimer left ringing (taken by ``owner``): status failed.

        False when the call moved on meanwhile (a redelivery claimed and answered it).
        """
        ringing = and_(
            calls.c.call_id == call_id,
            calls.c.status == CallStatus.RINGING,
            calls.c.owner == owner,
        )
        values = {
            "status": CallStatus.FAILED,
            "outcome": CallOutcome.FAILED,
            "error": "claimed but never answered: the worker that claimed it is gone",
            "ended_at": now,
            "updated_at": now,
        }
        with transaction(self._engine, "resolve_unanswered", write=True) as conn:
            changed = conn.execute(update(calls).where(ringing).values(**values)).rowcount > 0
            conn.execute(delete(leases).where(leases.c.call_id == call_id, leases.c.owner == owner))
        return changed


def _takeable(ringing_before: datetime) -> Any:
    """Active calls, and ringing ones claimed before ``ringing_before``."""
    return (calls.c.status == CallStatus.ACTIVE) | and_(
        calls.c.status == CallStatus.RINGING, calls.c.claimed_at < ringing_before
    )


_SAVE_STATE: Final = (
    update(leases)
    .where(leases.c.call_id == bindparam("id"), leases.c.owner == bindparam("me"))
    .values(state=bindparam("new_state"))
)
