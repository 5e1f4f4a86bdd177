"""The writers' queue in front of SQLite's write lock: threads and processes take turns."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from callcenter.store._writers import WriterQueue


def hold_turn(
    lock_file: str,
    entered: multiprocessing.synchronize.Event,
    release: multiprocessing.synchronize.Event,
    released: multiprocessing.synchronize.Event,
) -> None:
    """Take the turn and hold it until told to let go (a long write)."""
    queue = WriterQueue(Path(lock_file))
    with queue.turn():
        entered.set()
        release.wait(timeout=30)
        released.set()
    queue.close()


def test_processes_take_turns(tmp_path: Path) -> None:
    """A writer in another process holds the turn: ours waits, and gets it once it is released."""
    lock_file = tmp_path / "db-writers.lock"
    context = multiprocessing.get_context("spawn")
    entered, release, released = context.Event(), context.Event(), context.Event()
    other = context.Process(target=hold_turn, args=(str(lock_file), entered, release, released))
    other.start()
    got_turn = threading.Event()
    seen_released: list[bool] = []

    def take_turn() -> None:
        queue = WriterQueue(lock_file)
        with queue.turn():
            seen_released.append(released.is_set())
            got_turn.set()
        queue.close()

    try:
        assert entered.wait(timeout=10)
        taker = threading.Thread(target=take_turn)
        taker.start()
        assert not got_turn.wait(timeout=0.2)  # the other process still holds it
        release.set()
        assert got_turn.wait(timeout=10)
        taker.join(timeout=10)
    finally:
        release.set()
        other.join(timeout=10)
    assert seen_released == [True]  # our turn began only after theirs ended


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
