"""Durable writes: the recorder keeps what calls record through store outages and crashes.

The outages are real: a private PostgreSQL cluster (see ``tests/pg_cluster.py``) stopped and
started again, a recorder process killed with SIGKILL, a SQLite foreign key refusing a write.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcenter.call.recorder import Backoff, Recorder
from callcenter.call.spill import spill_files
from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.call.writes import Answered, Ended, Event, to_line
from callcenter.observability import metrics
from callcenter.observability.logs import CallContextFilter
from callcenter.store import Store, default_sqlite_url
from tests import pg_cluster
from tests.harness import wait_for
from tests.test_store import claim_with

T1 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
FAST = Backoff(first=0.01, longest=0.05)


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg_cluster.PrivateCluster]:
    """A private PostgreSQL cluster this module may stop and start."""
    yield from pg_cluster.module_cluster()


@pytest.fixture
def pg_store(cluster: pg_cluster.PrivateCluster) -> Iterator[Store]:
    """A migrated store in a fresh database of the private cluster, which is running."""
    store = Store.open(cluster.new_database())
    yield store
    store.close()
    if not cluster.running():
        cluster.start()


def status_of(store: Store, call_id: str) -> str | None:
    """The call's status in the store (None if it has no row)."""
    record = store.get_call(call_id)
    return None if record is None else record.status


def problems(result: str) -> float:
    """``callcenter_store_write_problems_total`` of this process for ``result``."""
    body, _ = metrics.exposition()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name == "callcenter_store_write_problems_total" and labels["result"] == result:
                return sample.value
    raise AssertionError(f"no store write problems counted as {result}")


def events_of(store: Store, call_id: str) -> list[object]:
    """The ``n`` of the call's stored events, in store order."""
    return [event.data["n"] for event in store.events(call_id)]


def test_a_failed_write_is_retried_with_backoff_until_the_store_is_back(
    cluster: pg_cluster.PrivateCluster, pg_store: Store
) -> None:
    """A call's end written while PostgreSQL is down waits 0.05, 0.1, 0.2... s and lands."""
    claim_with(pg_store, "rtc_1", CallOutcome.ACCEPTED)
    cluster.stop()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 5:
            cluster.start()

    recorder = Recorder(pg_store, backoff=Backoff(first=0.05, longest=0.4), sleep=sleep)
    recorder.write(Ended("rtc_1", CallOutcome.COMPLETED, T1))
    assert recorder.flush(30)
    recorder.close(5)
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.4]
    record = pg_store.get_call("rtc_1")
    assert record is not None
    assert (record.status, record.outcome, record.ended_at) == ("ended", "completed", T1)


def test_writes_keep_their_order_per_call_through_an_outage(
    cluster: pg_cluster.PrivateCluster, pg_store: Store
) -> None:
    """Events of two calls recorded during an outage land once each, in order, then the end."""
    claim_with(pg_store, "rtc_a", CallOutcome.ACCEPTED)
    claim_with(pg_store, "rtc_b", CallOutcome.ACCEPTED)
    cluster.stop()
    recorder = Recorder(pg_store, backoff=FAST)
    for n in range(50):
        recorder.event("rtc_a" if n % 2 else "rtc_b", "dtmf", {"n": n}, T1)
    recorder.write(Ended("rtc_a", CallOutcome.COMPLETED, T1))
    recorder.write(Ended("rtc_b", CallOutcome.COMPLETED, T1))
    cluster.start()
    assert recorder.flush(30)
    recorder.close(5)
    assert events_of(pg_store, "rtc_a") == list(range(1, 50, 2))
    assert events_of(pg_store, "rtc_b") == list(range(0, 50, 2))
    assert [status_of(pg_store, c) for c in ("rtc_a", "rtc_b")] == ["ended", "ended"]


def test_a_long_outage_spills_to_disk_and_replays_when_the_store_is_back(
    cluster: pg_cluster.PrivateCluster, pg_store: Store, tmp_path: Path
) -> None:
    """Past the memory bound writes go to an fsynced spill file, replayed and deleted later."""
    claim_with(pg_store, "rtc_1", CallOutcome.ACCEPTED)
    cluster.stop()
    spill_dir = tmp_path / "spill"
    spilled_before, retried_before = problems("spilled"), problems("retried")
    recorder = Recorder(pg_store, spill_dir=spill_dir, memory=10, backoff=FAST)
    for n in range(200):
        recorder.event("rtc_1", "dtmf", {"n": n}, T1)
    recorder.write(Ended("rtc_1", CallOutcome.COMPLETED, T1))

    def spilled() -> int:
        files = spill_files(spill_dir)
        return len(files[0].read_text().splitlines()) if files else 0

    wait_for(lambda: spilled() >= 201 - 2 * 10, what="the writes past memory to be spilled")
    assert stat.S_IMODE(spill_files(spill_dir)[0].stat().st_mode) == 0o600  # calls are private
    assert problems("spilled") - spilled_before >= 201 - 2 * 10
    assert problems("retried") > retried_before
    cluster.start()
    assert recorder.flush(30)
    wait_for(lambda: not spill_files(spill_dir), what="the replayed spill file to go")
    recorder.close(5)
    assert events_of(pg_store, "rtc_1") == list(range(200))
    assert status_of(pg_store, "rtc_1") == "ended"


def test_writes_left_at_close_during_an_outage_are_written_by_the_next_recorder(
    cluster: pg_cluster.PrivateCluster, pg_store: Store, tmp_path: Path
) -> None:
    """Closing while the store is down keeps the queue on disk; the next start writes it."""
    claim_with(pg_store, "rtc_1", CallOutcome.ACCEPTED)
    cluster.stop()
    spill_dir = tmp_path / "spill"
    first = Recorder(pg_store, spill_dir=spill_dir, backoff=FAST)
    for n in range(20):
        first.event("rtc_1", "dtmf", {"n": n}, T1)
    first.write(Ended("rtc_1", CallOutcome.COMPLETED, T1))
    first.close(0.2)
    assert len(spill_files(spill_dir)) == 1
    cluster.start()
    second = Recorder(pg_store, spill_dir=spill_dir, backoff=FAST)
    second.resume()
    wait_for(lambda: not spill_files(spill_dir), what="the left writes to be replayed")
    second.close(5)
    assert events_of(pg_store, "rtc_1") == list(range(20))
    assert status_of(pg_store, "rtc_1") == "ended"


_DYING_RECORDER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from callcenter.call.recorder import Backoff, Recorder
    from callcenter.call.spill import spill_files
    from callcenter.call.vocabulary import CallOutcome
    from callcenter.call.writes import Ended
    from callcenter.store import Store

    url, spill_dir = sys.argv[1], Path(sys.argv[2])
    recorder = Recorder(Store.open(url), spill_dir=spill_dir, memory=5, backoff=Backoff(0.01, 0.05))
    at = datetime.now(UTC)
    for n in range(50):
        recorder.event("rtc_1", "dtmf", {"n": n}, at)
    recorder.write(Ended("rtc_1", CallOutcome.COMPLETED, at))
    while not any('"op":"ended"' in f.read_text() for f in spill_files(spill_dir)):
        time.sleep(0.01)  # the end is the last write: all before it are in memory or on disk
    print("spilled", flush=True)
    time.sleep(600)
    """
)


def test_a_recorder_killed_mid_outage_leaves_its_writes_to_the_next_one(
    cluster: pg_cluster.PrivateCluster, pg_store: Store, tmp_path: Path
) -> None:
    """SIGKILL during an outage loses only what was in memory; the spilled writes are replayed."""
    claim_with(pg_store, "rtc_1", CallOutcome.ACCEPTED)
    url = pg_store.engine.url.render_as_string(hide_password=False)
    cluster.stop()
    spill_dir = tmp_path / "spill"
    dying = subprocess.Popen(
        [sys.executable, "-c", _DYING_RECORDER, url, str(spill_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert dying.stdout is not None
        assert dying.stdout.readline().strip() == "spilled"
    finally:
        dying.send_signal(signal.SIGKILL)
        dying.wait(10)
    cluster.start()
    heir = Recorder(pg_store, spill_dir=spill_dir, backoff=FAST)
    heir.resume()
    wait_for(lambda: not spill_files(spill_dir), what="the dead recorder's writes to be replayed")
    heir.close(5)
    stored = events_of(pg_store, "rtc_1")
    assert stored == list(range(50 - len(stored), 50))  # the newest ones, in order
    assert len(stored) >= 40
    assert status_of(pg_store, "rtc_1") == "ended"


def test_a_replay_stores_no_event_twice(tmp_path: Path) -> None:
    """Replaying a spill file whose writes already landed changes nothing."""
    store = Store.open(default_sqlite_url(tmp_path / "data"))
    store.migrate()
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    lines = [to_line(Event("rtc_1", EventKind.DTMF, {"n": n}, T1, f"dead:{n}")) for n in range(5)]
    lines.append(to_line(Ended("rtc_1", CallOutcome.COMPLETED, T1)))
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    for replay in range(2):  # the second time, as after a crash in the middle of the first
        spill = spill_dir / "recorder-dead.jsonl"
        spill.write_text("\n".join(lines) + "\n")
        if replay == 1:
            later = T1 + timedelta(minutes=5)
            spill.write_text(
                spill.read_text() + to_line(Ended("rtc_1", CallOutcome.COMPLETED, later)) + "\n"
            )
        heir = Recorder(store, spill_dir=spill_dir)
        heir.resume()
        wait_for(lambda: not spill_files(spill_dir), what="the replay")
        heir.close(5)
        assert events_of(store, "rtc_1") == [0, 1, 2, 3, 4]
        assert store.get_call("rtc_1").ended_at == T1  # type: ignore[union-attr]
    store.close()


def test_a_write_the_store_refuses_is_dropped_and_the_rest_land(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An event of a call the store never had (a foreign key) is logged; its neighbours land."""
    store = Store.open(default_sqlite_url(tmp_path / "data"))
    store.migrate()
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    recorder = Recorder(store)
    dropped_before = problems("dropped")
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.ERROR, logger="callcenter.call.recorder"):
        recorder.event("rtc_1", "dtmf", {"n": 0}, T1)
        recorder.event("rtc_unknown", "dtmf", {"n": 1}, T1)
        recorder.event("rtc_1", "dtmf", {"n": 2}, T1)
        assert recorder.flush(10)
    recorder.close(5)
    assert events_of(store, "rtc_1") == [0, 2]
    dropped = [r for r in caplog.records if r.getMessage() == "store write dropped"]
    assert len(dropped) == 1
    assert dropped[0].call_id == "rtc_unknown"  # type: ignore[attr-defined]
    assert problems("dropped") == dropped_before + 1
    store.close()


def test_the_recorder_thread_survives_a_write_that_raises_something_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A write raising a non-store error is logged with its traceback; later writes land."""
    store = Store.open(default_sqlite_url(tmp_path / "data"))
    store.migrate()
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    recorder = Recorder(store)
    with caplog.at_level(logging.ERROR, logger="callcenter.call.recorder"):
        recorder.write(Answered("rtc_1", CallOutcome.COMPLETED, T1))  # ValueError: a final outcome
        recorder.event("rtc_1", "dtmf", {"n": 0}, T1)
        recorder.write(Ended("rtc_1", CallOutcome.COMPLETED, T1))
        assert recorder.flush(10)
    recorder.close(5)
    assert events_of(store, "rtc_1") == [0]
    assert status_of(store, "rtc_1") == "ended"
    [dropped] = [r for r in caplog.records if r.getMessage() == "store write dropped"]
    assert dropped.exc_info is not None
    assert dropped.exc_info[0] is ValueError
    store.close()
