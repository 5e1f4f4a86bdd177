"""The operators' side of the store: call search, commands, the audit trail, failed logins.

Commands carry an operator's transfer, hang-up or instruction to the worker that holds the
call's sideband, whichever worker or node received the request: the API inserts a row, the
holding worker claims it (one conditional UPDATE, so exactly one claimer wins), executes it
and writes the result. Failed logins are counted here, per client address, so that the
limiter of :mod:`callcenter.operators.auth` holds across workers and nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

from callcenter.call.vocabulary import LIVE_STATUSES
from callcenter.store.calls import Store, call_record
from callcenter.store.engine import padded_chunks, transaction
from callcenter.store.records import CallRecord
from callcenter.store.schema import audit, calls, commands, login_failures
from callcenter.store.search import calls_saying
from callcenter.store.wakeups import notify

__all__ = [
    "COMMANDS_CHANNEL",
    "AuditFilter",
    "AuditRecord",
    "CallFacts",
    "CallFilter",
    "CommandRecord",
    "OperatorStore",
]

COMMANDS_CHANNEL: Final = "callcenter_commands"  # PostgreSQL NOTIFY channel: a command queued


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which calls to list; every field None means no condition."""

    status: str | None = None
    route: str | None = None
    number: str | None = None  # the caller's or the dialled number
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    outcome: str | None = None
    ticket: str | None = None
    words: tuple[str, ...] = ()  # a transcript line says every one (see store.search)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the dashboard counts of one call (see ``callcenter.operators.stats``)."""

    received_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    status: str
    decision: str
    outcome: str | None
    escalation_trigger: str | None
    input_tokens: int | None
    output_tokens: int | None
    latency: dict[str, object] | None = None  # the caller's wait (callcenter.call.latency)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to list; every field None means no condition."""

    operator: str | None = None
    call_id: str | None = None
    action: str | None = None
    result: str | None = None  # this result, or one it prefixes up to a ':' ("refused")
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One row of ``commands``."""

    id: int
    call_id: str
    kind: str
    payload: dict[str, object]
    operator: str
    created_at: datetime
    claimed_by: str | None
    done_at: datetime | None
    result: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of ``audit``: who did what to which call, when, and how it went."""

    id: int
    at: datetime
    operator: str | None
    action: str
    call_id: str | None
    result: str
    client: str | None
    detail: dict[str, object]


class OperatorStore:
    """Operator tables on a :class:`Store`'s engine; safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine

    @property
    def engine(self) -> Engine:
        """The engine of the store (a notification listener needs its own connection)."""
        return self._engine

    # -- calls -------------------------------------------------------------------------------

    def search_calls(
        self, where: CallFilter, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[CallRecord]:
        """Calls matching ``where``, newest first, after the ``(received_at, call_id)`` cursor."""
        query = select(calls).order_by(calls.c.received_at.desc(), calls.c.call_id.desc())
        if where.status is not None:
            query = query.where(calls.c.status == where.status)
        if where.route is not None:
            query = query.where(calls.c.route == where.route)
        if where.number is not None:
            query = query.where(
                or_(calls.c.caller_number == where.number, calls.c.dialled_number == where.number)
            )
        if where.since is not None:
            query = query.where(calls.c.received_at >= where.since)
        if where.until is not None:
            query = query.where(calls.c.received_at < where.until)
        if where.outcome is not None:
            query = query.where(calls.c.outcome == where.outcome)
        if where.ticket is not None:
            query = query.where(calls.c.ticket == where.ticket)
        if where.words:
            dialect = self._engine.dialect.name
            query = query.where(calls.c.call_id.in_(calls_saying(dialect, list(where.words))))
        if after is not None:
            at, call_id = after
            query = query.where(
                or_(
                    calls.c.received_at < at,
                    and_(calls.c.received_at == at, calls.c.call_id < call_id),
                )
            )
        with transaction(self._engine, "search_calls", write=False) as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [call_record(row) for row in rows]

    def call_facts(
        self, *, since: datetime | None = None, until: datetime | None = None, live: bool = False
    ) -> list[CallFacts]:
        """The facts of the calls received in ``[since, until)`` (or live now), oldest first."""
        query = select(*(calls.c[name] for name in _FACT_COLUMNS)).order_by(calls.c.received_at)
        if since is not None:
            query = query.where(calls.c.received_at >= since)
        if until is not None:
            query = query.where(calls.c.received_at < until)
        if live:
            query = query.where(calls.c.status.in_(LIVE_STATUSES))
        with transaction(self._engine, "call_facts", write=False) as conn:
            rows = conn.execute(query).all()
        return [CallFacts(**row._mapping) for row in rows]

    # -- commands ----------------------------------------------------------------------------

    def add_command(
        self,
        call_id: str,
        kind: str,
        payload: Mapping[str, object],
        *,
        operator: str,
        at: datetime,
    ) -> int:
        """Queue a command for the worker holding ``call_id``; its id."""
        values = {
            "call_id": call_id,
            "kind": kind,
            "payload": dict(payload),
            "operator": operator,
            "created_at": at,
        }
        with transaction(self._engine, "add_command", write=True) as conn:
            result = conn.execute(insert(commands).values(**values))
            key = result.inserted_primary_key
            notify(conn, COMMANDS_CHANNEL)
        assert key is not None
        return int(key[0])

    def newest_command_id(self) -> int:
        """The id of the last command queued (0 when none): ids only grow."""
        with transaction(self._engine, "newest_command", write=False) as conn:
            return int(conn.execute(select(func.max(commands.c.id))).scalar() or 0)

    def claim_commands(self, call_ids: Sequence[str], *, owner: str) -> list[CommandRecord]:
        """Claim the unclaimed commands of ``call_ids`` for ``owner``, oldest first."""
        if not call_ids:
            return []
        queries = [
            select(commands).where(commands.c.call_id.in_(chunk), commands.c.claimed_by.is_(None))
            for chunk in padded_chunks(call_ids)
        ]
        with transaction(self._engine, "peek_commands", write=False) as conn:
            # Polled several times a second while calls are held: look before taking the
            # write lock, which SQLite's webhook claims queue behind.
            if all(
                conn.execute(query.with_only_columns(commands.c.id).limit(1)).first() is None
                for query in queries
            ):
                return []
        claimed: list[CommandRecord] = []
        with transaction(self._engine, "claim_commands", write=True) as conn:
            found = [row for query in queries for row in conn.execute(query)]
            for row in sorted(found, key=lambda row: row.id):
                won = conn.execute(
                    update(commands)
                    .where(commands.c.id == row.id, commands.c.claimed_by.is_(None))
                    .values(claimed_by=owner)
                )
                if won.rowcount > 0:
                    claimed.append(_command({**row._mapping, "claimed_by": owner}))
        return claimed

    def finish_command(self, command_id: int, *, result: str, at: datetime) -> None:
        """Record how a claimed command went."""
        with transaction(self._engine, "finish_command", write=True) as conn:
            conn.execute(
                update(commands)
                .where(commands.c.id == command_id)
                .values(done_at=at, result=result)
            )

    def command(self, command_id: int) -> CommandRecord | None:
        """The command, or None."""
        with transaction(self._engine, "command", write=False) as conn:
            row = conn.execute(select(commands).where(commands.c.id == command_id)).one_or_none()
        return None if row is None else _command(dict(row._mapping))

    # -- audit -------------------------------------------------------------------------------

    def add_audit(
        self,
        *,
        operator: str | None,
        action: str,
        call_id: str | None,
        result: str,
        client: str | None,
        at: datetime,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Append a row to the audit trail."""
        values = {
            "operator": operator,
            "action": action,
            "call_id": call_id,
            "result": result,
            "client": client,
            "at": at,
            "detail": dict(detail or {}),
        }
        with transaction(self._engine, "add_audit", write=True) as conn:
            conn.execute(insert(audit).values(**values))

    def audit(
        self, where: AuditFilter, *, limit: int, before_id: int | None = None
    ) -> list[AuditRecord]:
        """Audit rows matching ``where``, newest first, with an id below ``before_id``."""
        query = select(audit).order_by(audit.c.id.desc())
        if before_id is not None:
            query = query.where(audit.c.id < before_id)
        for column, value in (
            (audit.c.operator, where.operator),
            (audit.c.call_id, where.call_id),
            (audit.c.action, where.action),
        ):
            if value is not None:
                query = query.where(column == value)
        if where.result is not None:
            query = query.where(
                or_(
                    audit.c.result == where.result,
                    audit.c.result.startswith(where.result + ":", autoescape=True),
                )
            )
        if where.since is not None:
            query = query.where(audit.c.at >= where.since)
        if where.until is not None:
            query = query.where(audit.c.at < where.until)
        with transaction(self._engine, "audit", write=False) as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [AuditRecord(**row._mapping) for row in rows]

    # -- failed logins -----------------------------------------------------------------------

    def add_login_failure(self, client: str, *, at: datetime, forget_before: datetime) -> None:
        """Count a failed login of ``client``; forget every failure older than ``forget_before``."""
        with transaction(self._engine, "add_login_failure", write=True) as conn:
            conn.execute(delete(login_failures).where(login_failures.c.at < forget_before))
            conn.execute(insert(login_failures).values(client=client, at=at))

    def login_failures(self, client: str, *, since: datetime) -> tuple[int, datetime | None]:
        """How many failed logins ``client`` has had after ``since``, and the oldest one's time."""
        query = select(func.count(), func.min(login_failures.c.at)).where(
            login_failures.c.client == client, login_failures.c.at > since
        )
        with transaction(self._engine, "login_failures", write=False) as conn:
            count, oldest = conn.execute(query).one()
        return int(count), oldest


_FACT_COLUMNS: Final = tuple(CallFacts.__dataclass_fields__)


def _command(columns: Mapping[str, Any]) -> CommandRecord:
    return CommandRecord(**columns)
