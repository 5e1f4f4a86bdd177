"""Wake-ups through PostgreSQL: ``NOTIFY`` on a channel at commit, ``LISTEN`` in one thread.

They wake whoever waits for a change in the store (a released lease, a queued operator
command) at once, instead of at its next poll. SQLite has none: there the waiters poll.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["Listener", "notify", "supported"]

logger = logging.getLogger(__name__)


def supported(engine: Engine) -> bool:
    """Whether the engine's database sends notifications."""
    return engine.dialect.name == "postgresql"


def notify(conn: Connection, channel: str, payload: str = "") -> None:
    """Notify ``channel`` when ``conn``'s transaction commits (nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
        )


class Listener:
    """PostgreSQL only: calls ``wake`` whenever ``channel`` is notified.

    One thread with its own connection; a lost connection is opened again after a pause.
    The thread waits on its connection and on a socket that ``stop`` closes, so it ends at
    once when stopped, not at its next timeout.
    """

    def __init__(
        self, engine: Engine, channel: str, wake: Callable[[], None], *, pause: float = 1.0
    ) -> None:
        self._engine = engine
        self._channel = channel
        self._wake = wake
        self._pause = pause
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped_writer: socket.socket | None = None  # closed by stop: wakes the thread
        self.listening = threading.Event()  # set while LISTEN is in force

    def start(self) -> None:
        """Listen in a background thread."""
        stopped, self._stopped_writer = socket.socketpair()
        self._thread = threading.Thread(
            target=self._run,
            args=(stopped,),
            name=f"callcenter-listen-{self._channel}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; the thread ends at once unless it is opening a connection."""
        self._stop.set()
        if self._stopped_writer is not None:
            self._stopped_writer.close()
        if self._thread is not None:
            self._thread.join(timeout=0.2)  # a daemon: a connect in progress may outlast it

    def _run(self, stopped: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._listen(stopped)
                except (SQLAlchemyError, psycopg.Error, OSError) as exc:
                    fields = {"channel": self._channel, "error": type(exc).__name__}
                    logger.warning("listener reconnecting", extra=fields)
                except Exception:  # a thread boundary: log it, and listen again
                    logger.exception("listener failed", extra={"channel": self._channel})
                self._stop.wait(self._pause)
        finally:
            stopped.close()

    def _listen(self, stopped: socket.socket) -> None:
        raw = self._engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            driver.autocommit = True
            driver.execute(f"LISTEN {self._channel}")
            self.listening.set()
            waited = [driver.fileno(), stopped]
            while True:
                # what the connection holds now (a timeout of 0 reads once), then wait for more
                for _ in driver.notifies(timeout=0):
                    self._wake()
                if self._stop.is_set():
                    return
                select.select(waited, [], [])
        finally:
            self.listening.clear()
            raw.invalidate()  # its session listens: never give it back to the pool
