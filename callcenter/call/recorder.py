"""What live calls record, written to the store off the event loop, in order, on one thread.

The event loop must never wait on the database, and a call's events must land in the
order it recorded them. So calls hand their writes to one :class:`Recorder` per runtime:
a queue and a thread that runs them in order, grouping events that arrive together into
one transaction (a busy worker writes fewer, larger transactions). A store failure is
logged with the call's id and never reaches the call.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.errors import StoreError
from callcenter.observability.logs import bind_call
from callcenter.store import NewEvent

logger = logging.getLogger(__name__)

__all__ = ["CallStore", "Recorder"]

_MAX_BATCH: Final = 32  # events per transaction: short, so a webhook's claim never waits long


class CallStore(Protocol):
    """What calls record (a subset of :class:`callcenter.store.Store`)."""

    def record_outcome(
        self, call_id: str, *, outcome: CallOutcome, at: datetime, target: str | None = None
    ) -> None: ...

    def add_event(
        self, call_id: str, kind: EventKind, data: Mapping[str, object], at: datetime
    ) -> None: ...

    def add_events(self, events: list[NewEvent]) -> None: ...

    def record_handoff(
        self, call_id: str, *, ticket: str, trigger: str, summary: str | None, at: datetime
    ) -> None: ...

    def record_usage(
        self, call_id: str, usage: Mapping[str, int | float], *, at: datetime
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class _Write:
    call_id: str
    what: str
    run: Callable[[], None]


_Item = NewEvent | _Write | threading.Event | None


class Recorder:
    """One writer thread for a runtime's calls; starts on first use."""

    def __init__(self, store: CallStore) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def event(
        self, call_id: str, kind: EventKind, data: Mapping[str, object], at: datetime
    ) -> None:
        """Append an event to the call's history."""
        self._put(NewEvent(call_id, kind, dict(data), at))

    def write(self, call_id: str, what: str, run: Callable[[], None]) -> None:
        """Run another store write (``what`` names it in logs), after what is queued."""
        self._put(_Write(call_id, what, run))

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written; False if ``timeout`` passed first."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._put(done)
        return done.wait(timeout)

    def close(self, timeout: float) -> None:
        """Write what is queued (at most ``timeout`` seconds), then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("recorder stopped with writes still queued")

    def _put(self, item: _Item) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="callcenter-recorder", daemon=True
                )
                self._thread.start()
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            if isinstance(items[0], NewEvent):
                items = self._write_events(items[0])
            for item in items:
                if isinstance(item, _Write):
                    self._run_write(item)
                elif isinstance(item, threading.Event):
                    item.set()
                elif item is None:
                    return

    def _write_events(self, first: NewEvent) -> list[_Item]:
        """Write ``first`` and the events queued right behind it; return the item after them."""
        events = [first]
        following: list[_Item] = []
        while len(events) < _MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, NewEvent):
                following.append(item)
                break
            events.append(item)
        try:
            self.store.add_events(events)
        except StoreError:
            calls = sorted({event.call_id for event in events})  # of several calls: a field
            logger.exception("store write failed", extra={"what": "events", "call_ids": calls})
        return following

    def _run_write(self, write: _Write) -> None:
        with bind_call(write.call_id):
            try:
                write.run()
            except StoreError:
                logger.exception("store write failed", extra={"what": write.what})
