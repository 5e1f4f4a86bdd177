"""The writers' queue in front of SQLite's write lock: threads and processes take turns."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from callcenter.store._writers import WriterQueue

HOLD = 0.2


def hold_turn(lock_file: str, entered: multiprocessing.synchronize.Event) -> None:
    queue = WriterQueue(Path(lock_file))
    with queue.turn():
        entered.set()
        time.sleep(HOLD)  # a long write, so that the other process must wait
    queue.close()


def test_processes_take_turns(tmp_path: Path) -> None:
    """A writer in another process waits for the turn and gets it as soon as it is released."""
    lock_file = tmp_path / "db-writers.lock"
    context = multiprocessing.get_context("spawn")
    entered = context.Event()
    other = context.Process(target=hold_turn, args=(str(lock_file), entered))
    other.start()
    try:
        assert entered.wait(timeout=10)
        queue = WriterQueue(lock_file)
        started = time.monotonic()
        with queue.turn():
            waited = time.monotonic() - started
        queue.close()
    finally:
        other.join(timeout=10)
    assert 0.05 < waited < HOLD + 0.15


def test_threads_take_turns(tmp_path: Path) -> None:
    """Threads of one process never hold the turn at the same time."""
    queue = WriterQueue(tmp_path / "db-writers.lock")
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, overlaps
        for _ in range(50):
            with queue.turn():
                with guard:
                    inside += 1
                    overlaps += inside > 1
                time.sleep(0.0005)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.close()
    assert overlaps == 0


def test_without_a_lock_file_only_threads_queue() -> None:
    """An in-memory database has no file to lock: the queue still serialises threads."""
    queue = WriterQueue(None)
    with queue.turn():
        pass
    queue.close()
