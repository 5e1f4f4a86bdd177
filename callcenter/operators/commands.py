"""Operator commands delivered to the worker that holds the call, wherever the request landed.

:func:`deliver` first offers the command to this worker's runtime; when another worker (or
node) holds the call it queues a row in the store's ``commands`` table and waits, boundedly,
for the result. Every worker runs a :class:`CommandPoller` that claims the queued commands
of the calls it holds and passes them to its runtime.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from callcenter.call.actions import (
    OperatorCommand,
    OperatorHangup,
    OperatorInstruct,
    OperatorTransfer,
)
from callcenter.call.runtime import Runtime
from callcenter.errors import StoreError
from callcenter.observability.logs import bind_call
from callcenter.store import wakeups
from callcenter.store.operators import COMMANDS_CHANNEL, CommandRecord, OperatorStore

__all__ = [
    "DELIVERED",
    "NOT_HELD",
    "CommandPoller",
    "CommandDelivery",
    "command_from_row",
    "deliver",
    "describe_command",
]

logger = logging.getLogger(__name__)

DELIVERED = "delivered"  # the call's session got the command
NOT_HELD = "not_held"  # the claiming worker no longer held the call


@dataclass(frozen=True, slots=True)
class CommandDelivery:
    """How a command went: ``result`` None means no worker took it within the wait."""

    result: str | None
    command_id: int | None = None  # the queued row, when the command went through the store


def describe_command(command: OperatorCommand) -> tuple[str, dict[str, object]]:
    """The ``kind`` and JSON ``payload`` of a command (the ``commands`` table's columns)."""
    if isinstance(command, OperatorTransfer):
        return "transfer", {"target": command.target}
    if isinstance(command, OperatorInstruct):
        return "instruct", {"text": command.text}
    return "hangup", {}


def command_from_row(kind: str, payload: Mapping[str, object], operator: str) -> OperatorCommand:
    """The command a ``commands`` row describes; ValueError for an unknown kind."""
    if kind == "transfer":
        return OperatorTransfer(str(payload["target"]), operator)
    if kind == "instruct":
        return OperatorInstruct(str(payload["text"]), operator)
    if kind == "hangup":
        return OperatorHangup(operator)
    raise ValueError(f"unknown command kind {kind!r}")


def deliver(
    runtime: Runtime,
    store: OperatorStore,
    call_id: str,
    command: OperatorCommand,
    *,
    clock: Callable[[], datetime],
    wait: float = 5.0,
    poll: float = 0.05,
) -> CommandDelivery:
    """Pass ``command`` to the call, here or through the store; wait up to ``wait`` seconds."""
    kind, payload = describe_command(command)
    with bind_call(call_id):
        if runtime.command(call_id, command):
            logger.info("operator command delivered here", extra={"kind": kind})
            return CommandDelivery(DELIVERED)
        command_id = store.add_command(
            call_id, kind, payload, operator=command.operator, at=clock()
        )
        logger.info("operator command queued", extra={"command_id": command_id, "kind": kind})
    deadline = time.monotonic() + wait
    while True:
        row = store.command(command_id)
        if row is not None and row.result is not None:
            return CommandDelivery(row.result, command_id)
        if time.monotonic() >= deadline:
            return CommandDelivery(None, command_id)
        time.sleep(poll)


class CommandPoller:
    """Claims queued commands for the calls this worker holds and executes them.

    On PostgreSQL a ``NOTIFY`` from the worker that queued a command wakes the poller at
    once (:mod:`callcenter.store.wakeups`), and the poll interval is only a fallback; on
    SQLite it polls every ``interval``, and each poll first reads the newest command's id:
    when neither it nor the calls held changed since a claim, no command can wait for those
    calls, and the claim (a query over every held call) is skipped. (SQLite commits ids in
    order, one writer at a time; PostgreSQL may commit a lower id after a higher one.)
    """

    def __init__(
        self,
        runtime: Runtime,
        store: OperatorStore,
        *,
        owner: str,
        clock: Callable[[], datetime],
        interval: float = 0.2,
        notified_interval: float = 2.0,
    ) -> None:
        self._runtime = runtime
        self._store = store
        self._owner = owner
        self._clock = clock
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._listener = (
            wakeups.Listener(store.engine, COMMANDS_CHANNEL, self._woken.set)
            if wakeups.supported(store.engine)
            else None
        )
        self._interval = notified_interval if self._listener is not None else interval
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # The newest command id and the calls held at the last claim, which left none waiting.
        self._claimed_at: tuple[int, frozenset[str]] | None = None

    @property
    def listening(self) -> bool:
        """Whether notifications wake this poller now (always False on SQLite)."""
        return self._listener is not None and self._listener.listening.is_set()

    def start(self) -> None:
        """Start polling in a daemon thread (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="callcenter-commands", daemon=True
            )
            self._thread.start()
            if self._listener is not None:
                self._listener.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop polling."""
        self._stop.set()
        self._woken.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if self._listener is not None:
            self._listener.stop()
        if thread is not None:
            thread.join(timeout)

    def poll_once(self) -> int:
        """Claim and execute the queued commands of the calls held here; how many ran."""
        held = self._runtime.active_calls()
        if not held:
            return 0
        now = None
        if self._listener is None:  # SQLite
            now = (self._store.newest_command_id(), frozenset(held))
            if now == self._claimed_at:  # nothing queued, no call taken on since the last claim
                return 0
        claimed = self._store.claim_commands(held, owner=self._owner)
        self._claimed_at = now
        for row in claimed:
            with bind_call(row.call_id):
                self._execute(row)
        return len(claimed)

    def _execute(self, row: CommandRecord) -> None:
        fields: dict[str, object] = {"command_id": row.id, "kind": row.kind}
        try:
            command = command_from_row(row.kind, row.payload, row.operator)
        except (KeyError, TypeError, ValueError) as exc:  # a payload of the wrong shape
            logger.warning("bad operator command", extra={**fields, "error": str(exc)})
            self._store.finish_command(row.id, result="invalid", at=self._clock())
            return
        result = DELIVERED if self._runtime.command(row.call_id, command) else NOT_HELD
        self._store.finish_command(row.id, result=result, at=self._clock())
        logger.info("operator command executed", extra={**fields, "result": result})

    def _run(self) -> None:
        while not self._stop.is_set():
            self._woken.wait(self._interval)
            self._woken.clear()
            if self._stop.is_set():
                return
            try:
                self.poll_once()
            except StoreError as exc:  # the database is away: the next poll tries again
                logger.warning("operator commands not polled", extra={"error": str(exc)})
            except Exception:  # the top of a thread: log, go on
                logger.exception("operator command poll failed")
