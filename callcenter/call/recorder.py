"""What live calls record, written to the store off the event loop, in order, through outages.

The event loop must never wait on the database, and a call's writes must land in the order
it made them. So calls hand their writes (plain data, see :mod:`callcenter.call.writes`) to
one :class:`Recorder` per runtime: a queue and a thread that applies them in order, grouping
events that arrive together into one transaction.

A write that fails for a reason that may pass (the database down, a lock or connection
lost, see :func:`~callcenter.store.engine.is_transient`) is retried with exponential
backoff, and everything behind it waits in order: up to ``memory`` entries in memory, then
in this recorder's spill file (:mod:`callcenter.call.spill`), which is replayed once the
store is back, and by the next recorder to start if this process dies. A write the store
refuses for good (a constraint, a bug), or one that raises anything else, is logged with
its traceback and dropped; nothing stops the thread.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import pydantic
import tenacity

from callcenter.call.spill import SpillFile, adopt_orphans, spill_files
from callcenter.call.vocabulary import EventKind
from callcenter.call.writes import (
    CallStore,
    Entry,
    Event,
    Mark,
    Write,
    apply,
    apply_events,
    from_line,
    to_line,
)
from callcenter.errors import StoreError
from callcenter.observability import metrics
from callcenter.observability.logs import bind_call
from callcenter.store.engine import is_transient

logger = logging.getLogger(__name__)

__all__ = ["Backoff", "CallStore", "Recorder"]

_MAX_BATCH: Final = 32  # events per transaction: short, so a webhook's claim never waits long
_READ_CHUNK: Final = 1000  # spill lines loaded into memory at a time


@dataclass(frozen=True, slots=True)
class Backoff:
    """The waits between tries of a failed write: ``first`` s, doubling up to ``longest`` s."""

    first: float = 0.05
    longest: float = 2.0


@dataclass(frozen=True, slots=True)
class _Stop:
    """Write what is queued, then stop."""


@dataclass(frozen=True, slots=True)
class _Wake:
    """Look at the closing flag now."""


_Item = Entry | _Stop | _Wake


class Recorder:
    """One writer thread for a runtime's calls; starts on first use (or :meth:`resume`)."""

    def __init__(
        self,
        store: CallStore,
        *,
        spill_dir: Path | None = None,
        memory: int = 10_000,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """``spill_dir`` None keeps everything in memory; ``sleep`` replaces the backoff wait."""
        self.store = store
        self._spill_dir = spill_dir
        self._memory = memory
        self._backoff = backoff or Backoff()
        self._sleep = sleep or self._wait
        self._id = uuid.uuid4().hex[:16]
        self._numbers = itertools.count(1)
        self._incoming: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._marks: dict[str, threading.Event] = {}
        self._closing = threading.Event()
        # Owned by the writer thread: entries in order are _pending, _orphans, _own, _tail.
        self._pending: deque[Entry] = deque()
        self._orphans: list[SpillFile] = []  # left by recorders that died
        self._own: SpillFile | None = None
        self._tail: list[str] = []  # lines the spill file could not take (disk trouble)
        self._stopping = False
        self._failing_since: float | None = None
        self._policy = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_transient),
            wait=tenacity.wait_exponential(
                multiplier=self._backoff.first, max=self._backoff.longest
            ),
            stop=lambda _: self._closing.is_set(),
            sleep=self._pause,
            before_sleep=self._failing,
            reraise=True,
        )

    # -- the calls' side ---------------------------------------------------------------------

    def event(
        self, call_id: str, kind: EventKind, data: Mapping[str, object], at: datetime
    ) -> None:
        """Append an event to the call's history."""
        place = f"{self._id}:{next(self._numbers)}"
        self._put(Event(call_id, EventKind(kind), dict(data), at, place))

    def write(self, write: Write) -> None:
        """Make another store write, after what is queued."""
        self._put(write)

    def resume(self) -> None:
        """Start the thread now if a recorder (maybe a dead one) left spill files to replay."""
        if self._spill_dir is not None and spill_files(self._spill_dir):
            self._start()

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written; False if ``timeout`` passed first."""
        if self._thread is None:
            return True
        name = f"{self._id}:mark:{next(self._numbers)}"
        done = self._marks[name] = threading.Event()
        self._put(Mark(name))
        if done.wait(timeout):
            return True
        self._marks.pop(name, None)
        return False

    def close(self, timeout: float) -> None:
        """Write what is queued (at most ``timeout`` seconds), keep the rest on disk, stop."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._incoming.put(_Stop())
        thread.join(timeout)
        if thread.is_alive():
            self._closing.set()
            self._incoming.put(_Wake())
            thread.join(timeout)
        if thread.is_alive():
            logger.error("recorder not stopped", extra={"timeout": timeout})

    def _put(self, item: _Item) -> None:
        self._start()
        self._incoming.put(item)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closing.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="callcenter-recorder", daemon=True
                )
                self._thread.start()

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        if self._spill_dir is not None:
            try:
                self._orphans = adopt_orphans(self._spill_dir)
            except OSError:
                logger.exception("spill files not adopted", extra={"dir": str(self._spill_dir)})
        while True:
            try:
                if not self._step():
                    break
            except Exception:  # the top of a thread: log, go on
                logger.exception("recorder step failed")
                self._closing.wait(self._backoff.first)
        for spill in (*self._orphans, self._own):
            if spill is not None:
                spill.close()

    def _step(self) -> bool:
        """Take what arrived and write the next batch; False once there is nothing left to do."""
        if self._idle():
            self._finish_written()
        self._take(block=self._idle() and not self._stopping)
        if self._closing.is_set():
            self._save_rest()
            return False
        if self._idle():
            return not self._stopping
        batch = self._next_batch()
        if batch:
            self._write(batch)
        return True

    def _idle(self) -> bool:
        return not self._pending and not self._spilling()

    def _spilling(self) -> bool:
        """Whether entries wait on disk: new ones must go after them."""
        if self._tail or any(spill.unread for spill in self._orphans):
            return True
        return self._own is not None and self._own.unread

    def _take(self, *, block: bool, timeout: float | None = None) -> None:
        """Move what arrived from the queue into memory, or to the spill file past the limit."""
        lines: list[str] = []
        try:
            item = self._incoming.get(block=block, timeout=timeout)
            for _ in range(self._memory):
                self._accept(item, lines)
                item = self._incoming.get_nowait()
            self._accept(item, lines)
        except queue.Empty:
            pass
        finally:
            self._spill(lines)

    def _accept(self, item: _Item, lines: list[str]) -> None:
        if isinstance(item, _Stop):
            self._stopping = True
        elif isinstance(item, _Wake):
            pass
        elif self._spill_dir is not None and (
            lines or self._spilling() or len(self._pending) >= self._memory
        ):
            lines.append(to_line(item))
        else:
            self._pending.append(item)

    def _spill(self, lines: list[str]) -> None:
        if not lines and not self._tail:
            return
        self._tail.extend(lines)
        assert self._spill_dir is not None  # lines are only made with a spill directory
        try:
            if self._own is None:
                self._own = SpillFile.create(self._spill_dir)
                logger.warning("store writes spilling", extra={"file": self._own.path.name})
            self._own.append(self._tail)
            metrics.store_write_problem("spilled", len(self._tail))
        except OSError:
            logger.exception("spill failed; writes kept in memory", extra={"lines": len(lines)})
            return
        self._tail = []

    def _next_batch(self) -> list[Write]:
        """The next write, or the next run of events (one transaction); [] past a mark."""
        if not self._pending:
            self._load()
        if not self._pending:
            return []
        head = self._pending.popleft()
        if isinstance(head, Mark):
            done = self._marks.pop(head.name, None)
            if done is not None:
                done.set()
            return []
        batch: list[Write] = [head]
        if isinstance(head, Event):
            while len(batch) < _MAX_BATCH and self._pending:
                following = self._pending[0]
                if not isinstance(following, Event):
                    break
                batch.append(following)
                self._pending.popleft()
        return batch

    def _load(self) -> None:
        """Memory is empty: finish the spill files all written, load the next lines."""
        self._finish_written()
        own = self._own
        source = self._orphans[0] if self._orphans else own if own and own.unread else None
        if source is None:
            lines, self._tail = self._tail, []
        else:
            lines = source.read(_READ_CHUNK)
        for line in lines:
            try:
                self._pending.append(from_line(line))
            except pydantic.ValidationError:
                logger.warning("spill line unreadable", extra={"line": line[:200]})

    def _finish_written(self) -> None:
        """With memory empty, the spill files read to their end are all written: finish them."""
        while self._orphans and not self._orphans[0].unread:
            orphan = self._orphans.pop(0)
            orphan.finish()
            logger.info("store writes replayed", extra={"file": orphan.path.name})
        own = self._own
        if own is not None and not own.empty and not own.unread:
            own.finish()
            self._own = None
            logger.info("store writes replayed", extra={"file": own.path.name})

    def _write(self, batch: list[Write]) -> None:
        """Write ``batch``, retrying while the failure may pass; drop what can never land."""
        try:
            self._retrying(batch)
        except StoreError as exc:
            if is_transient(exc) and self._closing.is_set():  # kept for the next start
                self._pending.extendleft(reversed(batch))
                return
            if len(batch) > 1:  # find the one the store refuses
                for write in batch:
                    self._write([write])
                return
            self._dropped(batch[0], str(exc))
        except Exception as exc:  # a bug in what was recorded: retrying cannot help
            if len(batch) > 1:
                for write in batch:
                    self._write([write])
                return
            self._dropped(batch[0], type(exc).__name__, traceback=True)

    def _retrying(self, batch: list[Write]) -> None:
        for attempt in self._policy:
            with attempt:
                if len(batch) == 1:
                    apply(self.store, batch[0])
                else:
                    apply_events(self.store, [write for write in batch if isinstance(write, Event)])
        if self._failing_since is not None:
            seconds = time.monotonic() - self._failing_since
            self._failing_since = None
            logger.info("store writes resumed", extra={"seconds": round(seconds, 3)})

    def _failing(self, state: tenacity.RetryCallState) -> None:
        metrics.store_write_problem("retried")
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            error = state.outcome.exception() if state.outcome is not None else None
            logger.warning("store writes failing; retrying", extra={"error": str(error)})

    def _pause(self, seconds: float) -> None:
        """Between two tries: keep taking what arrives (memory stays bounded), then wait."""
        self._take(block=False)
        self._sleep(seconds)

    def _wait(self, seconds: float) -> None:
        """The default wait: ``seconds``, taking what arrives meanwhile; cut short by close."""
        deadline = time.monotonic() + seconds
        while not self._closing.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._take(block=True, timeout=remaining)

    def _dropped(self, write: Write, error: str, *, traceback: bool = False) -> None:
        metrics.store_write_problem("dropped")
        with bind_call(write.call_id):
            fields = {"what": type(write).__name__.lower(), "error": error}
            if traceback:
                logger.exception("store write dropped", extra=fields)
            else:
                logger.error("store write dropped", extra=fields)

    def _save_rest(self) -> None:
        """Closing with writes left: put them all, in order, in our spill file for later."""
        self._take(block=False)  # what arrived last lands behind the rest
        lines = [to_line(entry) for entry in self._pending if not isinstance(entry, Mark)]
        self._pending.clear()
        for spill in (*self._orphans, self._own):
            while spill is not None and spill.unread:
                lines.extend(spill.read(_READ_CHUNK))
        lines.extend(self._tail)
        self._tail = []
        if not lines:
            return
        if self._spill_dir is None:
            logger.error("store writes lost", extra={"writes": len(lines)})
            return
        try:
            own = self._own or SpillFile.create(self._spill_dir)
            own.replace(lines)
        except OSError:
            logger.exception("store writes lost", extra={"writes": len(lines)})
            return
        self._own = own
        for orphan in self._orphans:
            orphan.finish()
        self._orphans = []
        logger.warning(
            "store writes kept for the next start",
            extra={"writes": len(lines), "file": own.path.name},
        )


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, StoreError) and is_transient(exc)
