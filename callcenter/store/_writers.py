"""The queue in front of a SQLite database's single write lock.

SQLite lets one writer in at a time; the others get SQLITE_BUSY and its busy handler
retries them after sleeping 1, 2, 5, 10, 15… ms. A webhook's claim that arrives while
another worker writes would sleep that long even when the writer is done in 0.3 ms. So
writers queue here first: threads of one process on a lock, processes on an exclusive
``flock`` of a file beside the database, which wakes the next writer as soon as the last
one releases it. Connections that skip the queue (``callcenter migrate``, another tool)
stay correct: they just wait the busy handler's way.

SQLite also copies the WAL back into the database (a checkpoint: page copies, then an
fsync) inside whichever commit passes 1,000 pages of WAL, a webhook's claim as likely as
any. So connections never checkpoint by themselves, and :class:`WalCheckpoints` has a
background write run one, off the claim's path, once enough writes have been committed.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WalCheckpoints:
    """Counts one process's write commits on one database and says when a checkpoint is due.

    A checkpoint is due every ``every`` commits, and runs at the first commit after that
    which is not ``urgent``: a write a caller waits on never pays for one.
    """

    def __init__(self, every: int) -> None:
        self._every = every
        self._commits = 0
        self._lock = threading.Lock()

    def committed(self, *, urgent: bool) -> bool:
        """Count a commit; True when its writer should run the due checkpoint now."""
        with self._lock:
            self._commits += 1
            if urgent or self._commits < self._every:
                return False
            self._commits = 0
            return True


class WriterQueue:
    """Serialises writers across threads and, with a lock file, across processes."""

    def __init__(self, lock_file: Path | None) -> None:
        self._lock_file = lock_file
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn and hold it for the block."""
        with self._thread_lock:
            fd = self._file_for_this_process()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's handle on the lock file."""
        with self._thread_lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _file_for_this_process(self) -> int | None:
        # A forked child shares its parent's open file, and so its flock: open our own.
        if self._lock_file is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd
