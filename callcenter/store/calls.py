"""The store: calls, their events and webhook deliveries, in SQLite or PostgreSQL.

Every method runs one short transaction on a pooled connection, so one Store is shared by
all threads of a process; each process (each gunicorn worker) opens its own. Every database
failure leaves as StoreError.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final

from alembic.util import CommandError
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from callcenter.call.vocabulary import (
    LIVE_STATUSES,
    CallOutcome,
    CallStatus,
    DecisionKind,
    EventKind,
)
from callcenter.errors import SchemaError, StoreError
from callcenter.store.engine import (
    create_store_engine,
    dispose,
    lock_call,
    lock_exclusively,
    transaction,
)
from callcenter.store.outbox import Subscribers, enqueue
from callcenter.store.records import (
    CallEvent,
    CallRecord,
    ClaimResult,
    DecisionRecord,
    NewCall,
    NewEvent,
    WebhookEventRecord,
)
from callcenter.store.schema import UtcDateTime, call_events, calls, leases, webhook_events
from callcenter.store.versioning import current_revision, head_revision, upgrade_to_head

logger = logging.getLogger(__name__)

INCOMING_CALL_EVENT: Final = "realtime.call.incoming"

# How long a claim's lease lasts until the lease keeper's first renewal of the held call
# (see store.leases): it covers the accept (at most the control deadline) and that first
# renewal; a ringing call whose claimer died stops holding a slot against the cap after it.
CLAIM_LEASE: Final = timedelta(seconds=10)

# Advisory lock keys (PostgreSQL), the ASCII of "callclm1" and "callmig1".
_CLAIM_LOCK_KEY: Final = 0x63616C6C636C6D31
# The namespace of the per-call lock that copies of one call's webhook queue on (PostgreSQL).
_CALL_LOCK_NAMESPACE: Final = 0x63636C31
_MIGRATE_LOCK_KEY: Final = 0x63616C6C6D696731


class Store:
    """Calls, call events and webhook deliveries; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        subscribers: Subscribers | None = None,
        analysed_routes: Collection[str] = (),
    ) -> None:
        """Prepare an engine for ``url`` (see ``create_store_engine``); connects lazily.

        ``subscribers`` names the receivers of each notification (``[[notify]]``); without
        it, no event is queued. An answered call of a route in ``analysed_routes`` is queued
        for analysis when it ends (``[routes.analysis]``).
        """
        self._engine = create_store_engine(url)
        self._subscribers: Subscribers = subscribers or _nobody
        self._analysed_routes = frozenset(analysed_routes)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        subscribers: Subscribers | None = None,
        analysed_routes: Collection[str] = (),
    ) -> Store:
        """The store at ``url``: ``sqlite:///PATH`` or ``postgresql+psycopg://...``."""
        return cls(url, subscribers=subscribers, analysed_routes=analysed_routes)

    @property
    def subscribers(self) -> Subscribers:
        """Who takes each notification (see ``store.outbox``)."""
        return self._subscribers

    @property
    def url(self) -> str:
        """The database URL with its password masked, fit for logs."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The engine, shared with the store's other tables (see ``store.operators``)."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        dispose(self._engine)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision; a no-op when it is already there."""
        with transaction(self._engine, "migrate", write=True) as conn:
            lock_exclusively(conn, _MIGRATE_LOCK_KEY)
            before = current_revision(conn)
            try:
                upgrade_to_head(conn)
            except CommandError as exc:
                raise StoreError(f"migrate failed: {exc}") from exc
        if before != head_revision():
            logger.info(
                "store migrated",
                extra={"url": self.url, "from_revision": before, "to_revision": head_revision()},
            )

    def check(self) -> None:
        """Raise StoreError unless the database answers; SchemaError unless it is at the head."""
        with transaction(self._engine, "check", write=False) as conn:
            conn.exec_driver_sql("SELECT 1")
            current = current_revision(conn)
        if current != head_revision():
            raise SchemaError(
                f"database at revision {current or 'none'}, expected {head_revision()}; "
                "run `callcenter migrate`"
            )

    # -- claiming a call ---------------------------------------------------------------------

    def claim_call(
        self,
        call: NewCall,
        decide: Callable[[int], DecisionRecord],
        *,
        owner: str,
        stale_after: timedelta,
        now: datetime,
    ) -> tuple[ClaimResult, DecisionRecord | None]:
        """Record this webhook delivery and claim its call, deciding it under the claim lock.

        The call is claimed when no row exists yet, or when its row is still "ringing" and
        was claimed more than ``stale_after`` ago (the worker died mid-decision). Claims are
        serialised across threads, processes and nodes, so ``decide`` gets an exact count of
        the other live (ringing or active) calls and exactly one concurrent copy wins.
        Returns (CLAIMED, decision) or (DUPLICATE, None).
        """
        with transaction(self._engine, "claim_call", write=True, urgent=True) as conn:
            # Copies of one call first queue on that call's own lock and answer a duplicate
            # from there, so that only the first copy waits for the global claim lock.
            # The global lock is then only for the exact count of live calls ``decide`` needs.
            lock_call(conn, _CALL_LOCK_NAMESPACE, call.call_id)
            _record_delivery(conn, call)
            existing = conn.execute(_SELECT_CLAIM, {"call_id": call.call_id}).one_or_none()
            stale = existing is not None and _stale(existing, now, stale_after)
            if existing is not None and not stale:
                return ClaimResult.DUPLICATE, None
            lock_exclusively(conn, _CLAIM_LOCK_KEY)
            decision = decide(_count_live(conn, now, excluding=call.call_id))
            claim = {
                "route": decision.route,
                "decision": decision.decision,
                "decision_reason": decision.reason,
                "reject_code": decision.reject_code,
                "target": decision.target,
                "status": CallStatus.RINGING,
                "claimed_at": now,
                "decided_at": now,
                "owner": owner,
                "updated_at": now,
            }
            if existing is None:
                conn.execute(_INSERT_CALL, {**_new_call_columns(call), **claim})
            else:
                conn.execute(update(calls).where(calls.c.call_id == call.call_id).values(**claim))
                logger.warning(
                    "stale claim taken over", extra={"from_owner": existing.owner, "owner": owner}
                )
            lease = {"owner": owner, "expires_at": now + CLAIM_LEASE}
            conn.execute(
                _UPSERT_LEASE[conn.dialect.name],
                {"call_id": call.call_id, "state": None, "takeovers": 0, **lease},
            )
        return ClaimResult.CLAIMED, decision

    def release_claim(self, call_id: str, *, owner: str | None = None) -> None:
        """Best effort: forget a "ringing" call we claimed but could not act on.

        With ``owner``, only that owner's claim is released (not one taken over since).
        A store failure is logged, not raised: the caller is already handling a failure.
        """
        ringing = (calls.c.call_id == call_id) & (calls.c.status == CallStatus.RINGING)
        if owner is not None:
            ringing &= calls.c.owner == owner
        try:
            with transaction(self._engine, "release_claim", write=True) as conn:
                conn.execute(
                    delete(call_events).where(
                        call_events.c.call_id.in_(select(calls.c.call_id).where(ringing))
                    )
                )
                conn.execute(
                    delete(leases).where(
                        leases.c.call_id.in_(select(calls.c.call_id).where(ringing))
                    )
                )
                conn.execute(delete(calls).where(ringing))
        except StoreError as exc:
            logger.warning("claim not released", extra={"error": str(exc)})

    # -- state changes -----------------------------------------------------------------------

    def mark_answered(
        self, call_id: str, *, outcome: CallOutcome = CallOutcome.ACCEPTED, at: datetime
    ) -> None:
        """Record that a ringing call was accepted: it becomes "active" with ``outcome``.

        ``outcome`` is one a live call has: ``accepted``, or ``transferring`` for a refer route.
        """
        if outcome.final:
            raise ValueError(f"{outcome} is the outcome of a call that is over")
        values = {"status": outcome.status, "outcome": outcome, "answered_at": at}
        if not self._transition("mark_answered", call_id, (CallStatus.RINGING,), values, at):
            logger.warning("answer not recorded: wrong state", extra={"outcome": outcome})

    def record_outcome(
        self,
        call_id: str,
        *,
        outcome: CallOutcome,
        at: datetime,
        target: str | None = None,
        error: str | None = None,
    ) -> None:
        """The call is over with ``outcome``; its status follows (see ``CallOutcome.status``).

        Only a live call (ringing, or active unless rejected) ends, so a call keeps its first
        end; a call referred after being active keeps its first answer time. ``target`` (if
        given) replaces the decided one; ``error`` says what went wrong.
        """
        if not outcome.final:
            raise ValueError(f"{outcome} is the outcome of a call that goes on")
        status = outcome.status
        values: dict[str, Any] = {"status": status, "outcome": outcome, "ended_at": at}
        if status in (CallStatus.REJECTED, CallStatus.REFERRED):
            values[_ANSWERED_UNLESS_SET] = at
        if target is not None:
            values["target"] = target
        if error is not None:
            values["error"] = error
        if not self._transition("record_outcome", call_id, _ENDS_FROM[status], values, at):
            logger.debug("outcome not recorded: call already over", extra={"outcome": outcome})

    def set_owner(self, call_id: str, owner: str | None) -> None:
        """Record which process ("host:pid:token") holds the call, or None for nobody."""
        with transaction(self._engine, "set_owner", write=True) as conn:
            conn.execute(update(calls).where(calls.c.call_id == call_id).values(owner=owner))

    def add_event(
        self, call_id: str, kind: EventKind, data: Mapping[str, object], at: datetime
    ) -> None:
        """Append an event (transcript line, tool run, escalation...) to a call's history."""
        with transaction(self._engine, "add_event", write=True) as conn:
            conn.execute(
                insert(call_events).values(call_id=call_id, at=at, kind=kind, data=dict(data))
            )

    def add_events(self, events: Sequence[NewEvent]) -> None:
        """Append several events, of any calls, in order and in one transaction.

        An event whose ``place`` the store already holds is skipped, so a replay is harmless.
        """
        if not events:
            return
        rows = [
            {
                "call_id": e.call_id,
                "at": e.at,
                "kind": e.kind,
                "data": dict(e.data),
                "place": e.place,
            }
            for e in events
        ]
        with transaction(self._engine, "add_events", write=True) as conn:
            conn.execute(_INSERT_EVENTS[conn.dialect.name], rows)

    def record_handoff(
        self, call_id: str, *, ticket: str, trigger: str, summary: str | None, at: datetime
    ) -> None:
        """Record an escalation's ticket, trigger and the model's summary on the call."""
        values = {"ticket": ticket, "escalation_trigger": trigger, "summary": summary}
        with transaction(self._engine, "record_handoff", write=True) as conn:
            found = conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id)
                .values(**values, updated_at=at)
                .returning(calls.c.route)
            ).one_or_none()
            if found is None:
                return
            enqueue(
                conn,
                self._subscribers,
                event_type="call.escalated",
                call_id=call_id,
                route=found.route,
                at=at,
                data=values,
                distinct=ticket,
            )

    def record_usage(self, call_id: str, usage: Mapping[str, int | float], *, at: datetime) -> None:
        """Record the call's usage totals (``input_tokens`` and ``output_tokens`` also apart)."""
        values = {
            "usage": dict(usage),
            "input_tokens": int(usage.get("input_tokens", 0)),
            "output_tokens": int(usage.get("output_tokens", 0)),
        }
        statement = _setting_of_call(tuple(values))
        with transaction(self._engine, "record_usage", write=True) as conn:
            conn.execute(statement, _bound(values, call_id, at))

    def record_latency(self, call_id: str, latency: Mapping[str, Any], *, at: datetime) -> None:
        """Record the caller's waits on the call (see :mod:`callcenter.call.latency`)."""
        values = {"latency": dict(latency)}
        with transaction(self._engine, "record_latency", write=True) as conn:
            conn.execute(_setting_of_call(tuple(values)), _bound(values, call_id, at))

    def _transition(
        self,
        what: str,
        call_id: str,
        from_statuses: tuple[CallStatus, ...],
        values: dict[str, Any],
        at: datetime,
    ) -> bool:
        """Apply ``values`` to the call if its status is one of ``from_statuses``.

        A call that leaves the live statuses loses its lease: nobody holds it any more, and
        its ``call.ended`` (and ``call.transferred``) notifications are queued with its end.
        """
        statement = _transition_of(from_statuses, tuple(values))
        with transaction(self._engine, what, write=True) as conn:
            route = conn.execute(statement, _bound(values, call_id, at)).one_or_none()
            changed = route is not None
            if route is not None and values["status"] not in LIVE_STATUSES:
                conn.execute(_DELETE_LEASE, {"call_id": call_id})
                if values["status"] in _ANALYSED and route[0] in self._analysed_routes:
                    conn.execute(
                        update(calls)
                        .where(calls.c.call_id == call_id)
                        .values(analysis_status="pending", analysis_attempts=0)
                    )
                for event_type in _END_EVENTS[values["status"]]:
                    enqueue(
                        conn,
                        self._subscribers,
                        event_type=event_type,
                        call_id=call_id,
                        route=route[0],
                        at=at,
                    )
        return changed

    # -- reading -----------------------------------------------------------------------------

    def count_active_calls(self, now: datetime | None = None) -> int:
        """How many calls are ringing or active and held under a lease alive at ``now``.

        A row whose holder died (its lease expired) holds no slot: it is a call being taken
        over, or a stale row. Without ``now``, every ringing or active row counts.
        """
        with transaction(self._engine, "count_active_calls", write=False) as conn:
            if now is None:
                count: int = conn.execute(_COUNT_ROWS).scalar_one()
                return count
            return _count_live(conn, now)

    def get_call(self, call_id: str) -> CallRecord | None:
        """The call, or None if the store never claimed it."""
        with transaction(self._engine, "get_call", write=False) as conn:
            row = conn.execute(select(calls).where(calls.c.call_id == call_id)).one_or_none()
        return None if row is None else call_record(row)

    def list_calls(
        self, *, status: CallStatus | None = None, limit: int = 100, before: datetime | None = None
    ) -> list[CallRecord]:
        """The newest calls first, optionally of one status or received before ``before``."""
        query = select(calls).order_by(calls.c.received_at.desc(), calls.c.call_id.desc())
        if status is not None:
            query = query.where(calls.c.status == status)
        if before is not None:
            query = query.where(calls.c.received_at < before)
        with transaction(self._engine, "list_calls", write=False) as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [call_record(row) for row in rows]

    def events(self, call_id: str, *, after_id: int = 0) -> list[CallEvent]:
        """The call's events with an id above ``after_id``, oldest first."""
        query = (
            select(*_EVENT_COLUMNS)
            .where(call_events.c.call_id == call_id, call_events.c.id > after_id)
            .order_by(call_events.c.id)
        )
        with transaction(self._engine, "events", write=False) as conn:
            rows = conn.execute(query).all()
        return [CallEvent(**row._mapping) for row in rows]

    def transcript(self, call_id: str) -> list[CallEvent]:
        """The call's ``transcript`` events in conversation order (their ``seq``).

        Caller lines can be stored after the agent's answer (transcription runs beside the
        conversation), so store order is not conversation order.
        """
        query = (
            select(*_EVENT_COLUMNS)
            .where(call_events.c.call_id == call_id, call_events.c.kind == EventKind.TRANSCRIPT)
            .order_by(call_events.c.id)
        )
        with transaction(self._engine, "transcript", write=False) as conn:
            rows = conn.execute(query).all()
        lines = [CallEvent(**row._mapping) for row in rows]
        return sorted(lines, key=_seq)

    def webhook_event(self, webhook_id: str) -> WebhookEventRecord | None:
        """What the store saw of one webhook delivery (and its copies), or None."""
        query = select(webhook_events).where(webhook_events.c.webhook_id == webhook_id)
        with transaction(self._engine, "webhook_event", write=False) as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else WebhookEventRecord(**row._mapping)


# The statements of the claim, built once: a webhook waits on them, and building a
# statement (coercing its values, computing its cache key) costs more than running it.
_SELECT_CLAIM: Final = select(calls.c.status, calls.c.claimed_at, calls.c.owner).where(
    calls.c.call_id == bindparam("call_id")
)
_INSERT_CALL: Final = insert(calls)
# A value of a transition: the answer time, unless the call already has one.
_ANSWERED_UNLESS_SET: Final = "answered_at_unless_set"
_DELETE_LEASE: Final = delete(leases).where(leases.c.call_id == bindparam("call_id"))


@functools.cache
def _setting_of_call(columns: tuple[str, ...]) -> Update:
    """``UPDATE calls SET <columns>, updated_at WHERE call_id``, built once per column set.

    A call's writes run several times per call, and building a statement (coercing its
    values, computing its cache key) costs more than running it. Its parameters come from
    :func:`_bound`.
    """
    names = (*columns, "updated_at")
    return (
        update(calls)
        .where(calls.c.call_id == bindparam("b_call_id"))
        .values({name: bindparam(f"b_{name}", type_=calls.c[name].type) for name in names})
    )


@functools.cache
def _transition_of(from_statuses: tuple[CallStatus, ...], columns: tuple[str, ...]) -> Update:
    """``_setting_of_call`` for a call whose status is one of ``from_statuses``, returning its
    route; the column ``_ANSWERED_UNLESS_SET`` sets ``answered_at`` only where it is null."""
    names = (*columns, "updated_at")
    values: dict[str, Any] = {
        name: bindparam(f"b_{name}", type_=calls.c[name].type)
        for name in names
        if name != _ANSWERED_UNLESS_SET
    }
    if _ANSWERED_UNLESS_SET in columns:
        default = bindparam(f"b_{_ANSWERED_UNLESS_SET}", type_=UtcDateTime())
        values["answered_at"] = func.coalesce(calls.c.answered_at, default)
    return (
        update(calls)
        .where(calls.c.call_id == bindparam("b_call_id"), calls.c.status.in_(from_statuses))
        .values(values)
        .returning(calls.c.route)
    )


def _bound(values: Mapping[str, Any], call_id: str, at: datetime) -> dict[str, Any]:
    """The parameters of a statement of :func:`_setting_of_call` or :func:`_transition_of`."""
    bound = {f"b_{name}": value for name, value in values.items()}
    bound["b_call_id"], bound["b_updated_at"] = call_id, at
    return bound


# The statuses from which a call may reach each final status.
_ENDS_FROM: Final[dict[CallStatus, tuple[CallStatus, ...]]] = {
    CallStatus.REJECTED: (CallStatus.RINGING,),
    CallStatus.REFERRED: (CallStatus.RINGING, CallStatus.ACTIVE),
    CallStatus.ENDED: (CallStatus.RINGING, CallStatus.ACTIVE),
    CallStatus.FAILED: (CallStatus.RINGING, CallStatus.ACTIVE),
}
# The notifications a call's end queues, by its final status.
_END_EVENTS: Final[dict[CallStatus, tuple[str, ...]]] = {
    CallStatus.REJECTED: ("call.ended",),
    CallStatus.REFERRED: ("call.transferred", "call.ended"),
    CallStatus.ENDED: ("call.ended",),
    CallStatus.FAILED: ("call.ended",),
}
# The final statuses of a call that talked to its agent, and so can be analysed.
_ANALYSED: Final = (CallStatus.ENDED, CallStatus.REFERRED)
_INSERT_EVENTS: Final = {
    "postgresql": postgresql.insert(call_events).on_conflict_do_nothing(index_elements=["place"]),
    "sqlite": sqlite.insert(call_events).on_conflict_do_nothing(index_elements=["place"]),
}
_EVENT_COLUMNS: Final = (
    call_events.c.id,
    call_events.c.call_id,
    call_events.c.at,
    call_events.c.kind,
    call_events.c.data,
)
_COUNT_LIVE: Final = (
    select(func.count())
    .select_from(calls.join(leases, leases.c.call_id == calls.c.call_id))
    .where(
        calls.c.status.in_(LIVE_STATUSES),
        calls.c.call_id != bindparam("excluding"),
        leases.c.expires_at > bindparam("now", type_=UtcDateTime()),
    )
)
_COUNT_ROWS: Final = (
    select(func.count()).select_from(calls).where(calls.c.status.in_(LIVE_STATUSES))
)


def _upsert_lease(dialect: Any) -> Any:
    """Insert a call's lease, or hand an existing one to the new claimer."""
    statement = dialect.insert(leases)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["call_id"],
        set_={"owner": excluded.owner, "expires_at": excluded.expires_at, "state": None},
    )


_UPSERT_LEASE: Final = {"postgresql": _upsert_lease(postgresql), "sqlite": _upsert_lease(sqlite)}
_ANOTHER_COPY: Final = {
    "deliveries": webhook_events.c.deliveries + 1,
    "last_seen_at": bindparam("seen_at", type_=UtcDateTime()),
}
_UPSERT_DELIVERY: Final = {
    "postgresql": postgresql.insert(webhook_events).on_conflict_do_update(
        index_elements=["webhook_id"], set_=_ANOTHER_COPY
    ),
    "sqlite": sqlite.insert(webhook_events).on_conflict_do_update(
        index_elements=["webhook_id"], set_=_ANOTHER_COPY
    ),
}


def _record_delivery(conn: Connection, call: NewCall) -> None:
    """Insert the webhook delivery, or count one more copy of it."""
    conn.execute(
        _UPSERT_DELIVERY[conn.dialect.name],
        {
            "webhook_id": call.webhook_id,
            "event_id": call.event_id,
            "event_type": INCOMING_CALL_EVENT,
            "call_id": call.call_id,
            "received_at": call.received_at,
            "deliveries": 1,
            "last_seen_at": call.received_at,
            "seen_at": call.received_at,
        },
    )


def _nobody(event_type: str, route: str | None) -> Sequence[str]:
    return ()


def _count_live(conn: Connection, now: datetime, *, excluding: str | None = None) -> int:
    count: int = conn.execute(_COUNT_LIVE, {"excluding": excluding or "", "now": now}).scalar_one()
    return count


def _stale(existing: Any, now: datetime, stale_after: timedelta) -> bool:
    """Whether a claimed call is still ringing past ``stale_after`` (its worker died)."""
    return bool(existing.status == CallStatus.RINGING and now - existing.claimed_at > stale_after)


def _new_call_columns(call: NewCall) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "webhook_id": call.webhook_id,
        "received_at": call.received_at,
        "caller_number": call.caller_number,
        "caller_uri": call.caller_uri,
        "caller_name": call.caller_name,
        "dialled_number": call.dialled_number,
        "dialled_uri": call.dialled_uri,
        "sip_headers": [[name, value] for name, value in call.sip_headers],
        "media_security": call.media_security,
    }


def _seq(event: CallEvent) -> int:
    seq = event.data.get("seq")
    return seq if isinstance(seq, int) else 0


def call_record(row: Row[Any]) -> CallRecord:
    """A ``calls`` row as a CallRecord."""
    columns = dict(row._mapping)
    columns["sip_headers"] = tuple(
        (str(name), str(value)) for name, value in columns["sip_headers"]
    )
    columns["decision"] = DecisionKind(columns["decision"])
    columns["status"] = CallStatus(columns["status"])
    if columns["outcome"] is not None:
        columns["outcome"] = CallOutcome(columns["outcome"])
    return CallRecord(**columns)
