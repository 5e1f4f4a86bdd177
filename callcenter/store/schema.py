"""The tables of the store, as SQLAlchemy Core metadata.

The migrations in ``migrations/versions`` create exactly these tables; a test compares the
two so that they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as a timezone-aware UTC ``datetime``.

    PostgreSQL stores ``timestamptz``; SQLite, which has no time zones, stores the UTC wall
    clock so that text comparison orders rows correctly. Naive datetimes are refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; the store needs UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def serial_id() -> Column[int]:
    """An autoincrementing ``id`` primary key: BIGINT on PostgreSQL, INTEGER on SQLite.

    SQLite autoincrements only an ``INTEGER PRIMARY KEY``, so the column is INTEGER there.
    """
    return Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


calls = Table(
    "calls",
    metadata,
    Column("call_id", Text, primary_key=True),
    Column("webhook_id", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("caller_number", Text),
    Column("caller_uri", Text),
    Column("caller_name", Text),
    Column("dialled_number", Text),
    Column("dialled_uri", Text),
    Column("sip_headers", JSON, nullable=False),  # list of [name, value]
    Column("media_security", Text),
    Column("route", Text),
    Column("decision", Text, nullable=False),  # accept | reject | refer
    Column("decision_reason", Text, nullable=False),
    Column("reject_code", Integer),
    Column("target", Text),
    Column("status", Text, nullable=False),  # see records.py
    Column("outcome", Text),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("answered_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("owner", Text),  # "host:pid:token" of the process holding the call
    Column("error", Text),
    Column("updated_at", UtcDateTime, nullable=False),
    # what the sideband learned (revision 0002)
    Column("ticket", Text),  # the last escalation's ticket, which a human's desk looks up
    Column("escalation_trigger", Text),  # what escalated the call (see escalation.TRIGGERS)
    Column("summary", Text),  # the model's handoff note for the human
    Column("input_tokens", BigInteger),  # usage summed over the call's responses
    Column("output_tokens", BigInteger),
    Column("usage", JSON),  # every usage total (see callcenter.call.usage.Usage)
    # the caller's wait (revision 0008): greeting_ms, turn_ms (see callcenter.call.latency)
    Column("latency", JSON),
    # post-call analysis (revision 0009)
    Column("analysis", JSON),  # {"summary", "success", "extracted"} (callcenter.analysis)
    Column("analysis_status", Text),  # pending | done | failed; None when the route has none
    Column("analysis_until", UtcDateTime),  # a claimed analysis is the claimer's until then
    Column("analysis_attempts", Integer),
    Index("ix_calls_status", "status"),
    Index("ix_calls_received_at", "received_at"),
    Index("ix_calls_route", "route"),
    Index("ix_calls_ticket", "ticket"),
    Index("ix_calls_analysis_status", "analysis_status"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("webhook_id", Text, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("call_id", Text),
    Column("received_at", UtcDateTime, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
)

call_events = Table(
    "call_events",
    metadata,
    serial_id(),
    Column("call_id", Text, ForeignKey(calls.c.call_id), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("place", Text),  # unique name given by the recorder (revision 0004)
    Index("ix_call_events_call_id_id", "call_id", "id"),
    Index("uq_call_events_place", "place", unique=True),
)

# -- operators (revision 0003) ----------------------------------------------------------------

commands = Table(
    "commands",
    metadata,
    serial_id(),
    Column("call_id", Text, nullable=False),
    Column("kind", Text, nullable=False),  # transfer | hangup | instruct
    Column("payload", JSON, nullable=False),
    Column("operator", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("claimed_by", Text),  # "host:pid:token" of the worker executing it
    Column("done_at", UtcDateTime),
    Column("result", Text),
    Index("ix_commands_call_id_done_at", "call_id", "done_at"),
)

audit = Table(
    "audit",
    metadata,
    serial_id(),
    Column("at", UtcDateTime, nullable=False),
    Column("operator", Text),  # None for a failed login
    Column("action", Text, nullable=False),
    Column("call_id", Text),
    Column("result", Text, nullable=False),
    Column("client", Text),  # the client's IP address
    Column("detail", JSON, nullable=False),
    Index("ix_audit_at", "at"),
)

# -- failed logins (revision 0005) ------------------------------------------------------------

login_failures = Table(
    "login_failures",
    metadata,
    serial_id(),
    Column("client", Text, nullable=False),  # the client's IP address
    Column("at", UtcDateTime, nullable=False),
    Index("ix_login_failures_client_at", "client", "at"),
    Index("ix_login_failures_at", "at"),
)


# -- sideband leases (revision 0006) ----------------------------------------------------------

leases = Table(
    "leases",
    metadata,
    Column("call_id", Text, primary_key=True),
    Column("owner", Text, nullable=False),  # "host:pid:token" of the process holding the call
    Column("expires_at", UtcDateTime, nullable=False),  # past it, any live worker may take over
    Column("state", JSON),  # what the session needs to resume (callcenter.call.resume)
    Column("takeovers", Integer, nullable=False),
    Index("ix_leases_expires_at", "expires_at"),
    Index("ix_leases_owner", "owner"),
)


# -- the notification outbox (revision 0009) --------------------------------------------------

notifications = Table(
    "notifications",
    metadata,
    serial_id(),
    Column("event_id", Text, nullable=False),  # the webhook-id: stable across retries
    Column("dedupe", Text, nullable=False),  # one row per event and receiver, however replayed
    Column("type", Text, nullable=False),  # call.ended | call.analyzed | ... (notify.config)
    Column("call_id", Text, nullable=False),
    Column("url", Text, nullable=False),  # the receiver
    Column("data", JSON),  # what the event adds to the call's record (ticket, analysis...)
    Column("created_at", UtcDateTime, nullable=False),
    Column("status", Text, nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_at", UtcDateTime, nullable=False),  # when it may be tried again
    Column("claimed_by", Text),  # "host:pid:token" of the worker delivering it now
    Column("claimed_until", UtcDateTime),  # past it, another worker may deliver it
    Column("last_answer", Text),  # the last attempt's HTTP status or error, and a bit of body
    Column("delivered_at", UtcDateTime),
    Index("uq_notifications_dedupe", "dedupe", unique=True),
    Index("ix_notifications_status_next_at", "status", "next_at"),
    Index("ix_notifications_call_id", "call_id"),
)
