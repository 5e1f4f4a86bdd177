"""Engines for SQLite and PostgreSQL, and the short transactions every store method runs in.

SQLite is tuned for several processes sharing one file (WAL, a busy timeout, and
``BEGIN IMMEDIATE`` for every write transaction, so that writers queue instead of failing
when a read lock cannot be upgraded). Writers also queue in front of that lock, across
threads and processes (see ``_writers``), because SQLite's busy handler waits by sleeping,
and the WAL is checkpointed by background writes, never inside a webhook's claim.
PostgreSQL gets pre-ping and a short connect timeout, so that a database that is down fails
a request in about two seconds. Lists of ids go into ``IN`` in :func:`padded_chunks`, so that
a process holding thousands of calls prepares a few statements, not one per list length.
"""

from __future__ import annotations

import logging
import sqlite3
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from callcenter.errors import StoreError
from callcenter.store._writers import WalCheckpoints, WriterQueue

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS: Final = 5000
# The longest list of ids one statement's IN takes (see padded_chunks).
IN_CHUNK: Final = 256
POSTGRES_CONNECT_TIMEOUT_S: Final = 2
# Write commits of one process between two WAL checkpoints (see ``_writers``): a few pages
# each, so the WAL stays near SQLite's own 1,000-page mark.
CHECKPOINT_EVERY: Final = 200

# Execution option that marks a connection's transactions as writes (SQLite: BEGIN IMMEDIATE).
_WRITE_OPTION: Final = "callcenter_write"
# The queue of writers in front of each SQLite engine's database.
_writer_queues: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()
# When each SQLite engine's background writes checkpoint its WAL.
_checkpoints: weakref.WeakKeyDictionary[Engine, WalCheckpoints] = weakref.WeakKeyDictionary()


def default_sqlite_url(data_dir: Path) -> str:
    """The URL of the SQLite database kept in ``data_dir`` when no database URL is configured."""
    return f"sqlite:///{data_dir / 'callcenter.db'}"


def create_store_engine(url: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://...``; connects lazily.

    Raises StoreError for a URL that cannot be parsed, names another database, or points to
    a SQLite file whose directory cannot be created.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return _postgresql_engine(parsed)
    raise StoreError(
        f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST/DATABASE"
    )


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    lock_file = None
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {database}: {exc}") from exc
        lock_file = Path(f"{database}-writers.lock")
    engine = create_engine(url)
    _writer_queues[engine] = WriterQueue(lock_file)
    _checkpoints[engine] = WalCheckpoints(CHECKPOINT_EVERY)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Stop the sqlite3 module from emitting BEGIN itself: _begin_sqlite_transaction does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA wal_autocheckpoint = 0")  # WalCheckpoints has them run
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def _postgresql_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":  # SQLAlchemy would pick psycopg2, which is not installed
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextmanager
def transaction(
    engine: Engine, what: str, *, write: bool, urgent: bool = False
) -> Iterator[Connection]:
    """A connection inside one transaction, committed when the block ends without error.

    ``write=True`` takes SQLite's write lock up front (BEGIN IMMEDIATE), after its turn in
    the writers' queue. On SQLite, a write that is not ``urgent`` (one no caller waits on)
    then runs the WAL checkpoint when one is due, after its turn. Any SQLAlchemy or driver
    error becomes a StoreError naming ``what`` failed.
    """
    queue = _writer_queues.get(engine) if write else None
    try:
        with queue.turn() if queue else nullcontext(), engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn
    except SQLAlchemyError as exc:
        raise StoreError(f"{what} failed: {_describe(exc)}") from exc
    checkpoints = _checkpoints.get(engine) if write else None
    if checkpoints is not None and checkpoints.committed(urgent=urgent):
        _checkpoint(engine)


def _checkpoint(engine: Engine) -> None:
    """Copy the WAL into the database without blocking writers (best effort: logged)."""
    try:
        with engine.connect() as conn:
            # On the driver's cursor: that connection is in autocommit, so no BEGIN comes first.
            cursor = conn.connection.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                cursor.close()
    except (SQLAlchemyError, sqlite3.Error) as exc:
        logger.warning("WAL checkpoint failed", extra={"error": str(exc)})


def lock_exclusively(conn: Connection, key: int) -> None:
    """Serialise the rest of this transaction against every other one locking ``key``.

    PostgreSQL takes a transaction-level advisory lock. SQLite needs nothing more: a write
    transaction already holds the database's single write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def lock_call(conn: Connection, namespace: int, call_id: str) -> None:
    """Serialise the rest of this transaction against others locking the same ``call_id``.

    PostgreSQL only (a transaction-level advisory lock on two 32-bit keys, a space apart from
    :func:`lock_exclusively`'s 64-bit keys); SQLite's write lock already serialises everything.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:call_id))"),
            {"namespace": namespace, "call_id": call_id},
        )


def is_transient(exc: StoreError) -> bool:
    """Whether the failure may pass by itself, so that the write is worth trying again.

    The database down, a dropped connection, a lock or pool timeout are transient; a
    constraint or type error (the write itself is wrong) is not.
    """
    cause = exc.__cause__
    if isinstance(cause, DisconnectionError | PoolTimeoutError | OperationalError | InterfaceError):
        return True
    return isinstance(cause, DBAPIError) and cause.connection_invalidated


def _describe(exc: SQLAlchemyError) -> str:
    """The driver's own message on one line, without the SQL text and its parameters."""
    cause: BaseException = exc
    if isinstance(exc, StatementError) and exc.orig is not None:
        cause = exc.orig
    return f"{type(cause).__name__}: {' '.join(str(cause).split())}"


_Id = TypeVar("_Id")


def padded_chunks(ids: Iterable[_Id]) -> Iterator[list[_Id]]:
    """``ids`` in lists of at most :data:`IN_CHUNK`, each padded to a power of two in length.

    SQLAlchemy renders an ``IN`` list of each new length as a new SQL text, and the driver
    prepares and caches each text apart (the sqlite3 module's statement cache per connection,
    psycopg's prepared statements): a lease renewal or command poll over every held call,
    whose number changes call by call, would fill those caches with one large statement per
    length. Padded (the last id repeated, which ``IN`` ignores), a list has one of nine
    lengths: 1, 2, 4, ... 256.
    """
    items = list(ids)
    for start in range(0, len(items), IN_CHUNK):
        chunk = items[start : start + IN_CHUNK]
        size = 1 << (len(chunk) - 1).bit_length()
        yield chunk + [chunk[-1]] * (size - len(chunk))


def dispose(engine: Engine) -> None:
    """Close the engine's connections and its writers' queue."""
    _checkpoints.pop(engine, None)
    queue = _writer_queues.pop(engine, None)
    if queue is not None:
        queue.close()
    engine.dispose()
