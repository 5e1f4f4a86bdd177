"""Database outages: PostgreSQL stopped while calls end, then started again.

``callcenter serve`` (gunicorn, two workers) runs calls on a private PostgreSQL cluster (see
``tests/pg_cluster.py``; the shared server is never touched). The cluster is stopped for a
few seconds while callers hang up and new calls ring: every webhook answered meanwhile is a
503, never a 500, and once the database is back every call's end is in the store and the
next call is accepted. ``CALLCENTER_LONG_TESTS=1`` runs a longer outage with more calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter.call.spill import spill_files
from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, EmulatedCall, EmulatorThread, Wait
from callcenter.store import Store
from tests import pg_cluster
from tests.harness import API_KEY, WEBHOOK_SECRET, GunicornController, wait_for
from tests.sideband_support import SUPPORT

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

LONG = os.environ.get("CALLCENTER_LONG_TESTS") == "1"


@dataclass(frozen=True)
class Outage:
    """One run: how many calls end during the outage, how many ring, how long it lasts."""

    ending: int
    ringing: int
    seconds: float


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg_cluster.PrivateCluster]:
    """A private PostgreSQL cluster this module stops and starts."""
    yield from pg_cluster.module_cluster()


@pytest.fixture
def database(cluster: pg_cluster.PrivateCluster) -> Iterator[str]:
    """The URL of a fresh, migrated database on the private cluster."""
    yield cluster.new_database()
    if not cluster.running():
        cluster.start()


@pytest.fixture
def serve_env(tmp_path: Path, emulator: EmulatorThread, database: str) -> dict[str, str]:
    """The environment of `callcenter serve` on the private database and the emulator."""
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPENAI_BASE_URL": emulator.base_url,
        "CALLCENTER_DATABASE_URL": database,
        "CALLCENTER_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def served(emulator: EmulatorThread, serve_env: dict[str, str]) -> Iterator[GunicornController]:
    """`callcenter serve` with two workers on the private database, wired to the emulator."""
    controller = GunicornController(serve_env, example_config_path(), workers=2)
    emulator.emulator.webhook_url = controller.webhook_url
    yield controller
    controller.stop()


def run_outage(
    outage: Outage,
    cluster: pg_cluster.PrivateCluster,
    emulator: EmulatorThread,
    database: str,
) -> dict[str, float]:
    """Calls end and ring during an outage; check what the issue promises; return figures."""
    store = Store.open(database)
    live = [
        emulator.place_call(to_number=SUPPORT, script=[Wait(120)]) for _ in range(outage.ending)
    ]
    wait_for(lambda: all(c.attaches >= 1 for c in live), timeout=30, what="every sideband")
    wait_for(lambda: all_active(store, live), timeout=30, what="every call active")

    stopped = time.monotonic()
    cluster.stop()
    for call in live:
        emulator.caller_hangs_up(call.call_id)
    ringing = [emulator.place_call(to_number=SUPPORT) for _ in range(outage.ringing)]
    wait_for(
        lambda: all(_given_up(c) for c in ringing), timeout=30, what="the webhook redeliveries"
    )
    time.sleep(max(0.0, outage.seconds - (time.monotonic() - stopped)))  # the outage's length
    cluster.start()
    restarted = time.monotonic()

    def recorded() -> bool:
        records = [store.get_call(c.call_id) for c in live]
        return all(r is not None and r.status == "ended" and r.outcome for r in records)

    wait_for(recorded, timeout=60, what="every outcome after the outage")
    caught_up = time.monotonic() - restarted
    statuses = [a.status for c in ringing for a in c.webhook_attempts]
    assert statuses, "no webhook was delivered during the outage"
    assert set(statuses) == {503}, statuses
    assert store.count_active_calls() == 0  # no slot leaked
    after = emulator.place_call(to_number=SUPPORT, script=[Wait(120)])
    wait_for(lambda: after.state is CallState.ACCEPTED, timeout=30, what="a call after the outage")
    store.close()
    return {
        "calls ended during the outage": outage.ending,
        "webhooks answered 503": len(statuses),
        "outage seconds": round(restarted - stopped, 1),
        "seconds to record every outcome after restart": round(caught_up, 2),
    }


def all_active(store: Store, calls: list[EmulatedCall]) -> bool:
    """Whether every call's answer is in the store."""
    records = [store.get_call(call.call_id) for call in calls]
    return all(record is not None and record.status == "active" for record in records)


def _given_up(call: EmulatedCall) -> bool:
    """Whether the emulator stopped redelivering the call's webhook (3 attempts, fixture)."""
    return len(call.webhook_attempts) >= 3


def test_calls_that_end_while_postgresql_is_down_are_recorded_when_it_returns(
    cluster: pg_cluster.PrivateCluster,
    emulator: EmulatorThread,
    served: GunicornController,
    database: str,
) -> None:
    """Down 3 s while 6 calls end and 3 ring: 503s, never 500; all 6 ends stored afterwards."""
    figures = run_outage(Outage(ending=6, ringing=3, seconds=3.0), cluster, emulator, database)
    print("\noutage figures:", figures)


@pytest.mark.skipif(not LONG, reason="long variant: set CALLCENTER_LONG_TESTS=1")
def test_a_ten_second_outage_with_more_calls_loses_no_outcome(
    cluster: pg_cluster.PrivateCluster,
    emulator: EmulatorThread,
    served: GunicornController,
    database: str,
) -> None:
    """Down 10 s while 40 calls end and 10 ring: 503s, never 500; all 40 ends stored."""
    figures = run_outage(Outage(ending=40, ringing=10, seconds=10.0), cluster, emulator, database)
    print("\noutage figures:", figures)


def test_a_server_stopped_during_an_outage_leaves_its_writes_to_the_next_start(
    cluster: pg_cluster.PrivateCluster,
    emulator: EmulatorThread,
    served: GunicornController,
    serve_env: dict[str, str],
    database: str,
) -> None:
    """SIGTERM while PostgreSQL is down: the ends wait on disk; the next serve writes them."""
    store = Store.open(database)
    live = [emulator.place_call(to_number=SUPPORT, script=[Wait(120)]) for _ in range(4)]
    wait_for(lambda: all_active(store, live), timeout=30, what="every call active")
    cluster.stop()
    for call in live:
        emulator.caller_hangs_up(call.call_id)
    wait_for(
        lambda: sum("call over" in line for line in list(served.output)) == len(live),
        timeout=30,
        what="the runtime to see every call end",
    )
    assert served.stop() == 0
    spill_dir = Path(serve_env["CALLCENTER_DATA_DIR"]) / "spill"
    kept = "".join(path.read_text() for path in spill_files(spill_dir))
    assert kept.count('"op":"ended"') == len(live)
    cluster.start()
    statuses = [store.get_call(c.call_id).status for c in live]  # type: ignore[union-attr]
    assert statuses == ["active"] * len(live), (statuses, kept)
    successor = GunicornController(serve_env, example_config_path(), workers=2)
    try:
        wait_for(
            lambda: all(store.get_call(c.call_id).status == "ended" for c in live),  # type: ignore[union-attr]
            timeout=30,
            what="the next start to write the kept ends",
        )
        wait_for(lambda: not spill_files(spill_dir), what="the spill files to go")
    finally:
        successor.stop()
    assert store.count_active_calls() == 0
    store.close()


def test_an_answer_the_store_cannot_take_is_written_after_the_outage(
    cluster: pg_cluster.PrivateCluster,
    emulator: EmulatorThread,
    served: GunicornController,
    database: str,
) -> None:
    """PostgreSQL stops between the claim and the accept: the answer and the end land later."""
    store = Store.open(database)
    emulator.faults.delay_rest("accept", seconds=3.0)
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(120)])

    def status() -> str | None:
        record = store.get_call(call.call_id)
        return None if record is None else record.status

    wait_for(lambda: status() == "ringing", what="the claim")
    cluster.stop()  # before the delayed accept returns
    wait_for(lambda: call.attaches >= 1, what="the sideband")
    emulator.caller_hangs_up(call.call_id)
    wait_for(
        lambda: any("call over" in line for line in list(served.output)),
        timeout=30,
        what="the runtime to see the call end",
    )
    cluster.start()
    wait_for(lambda: status() == "ended", timeout=30, what="the answer and the end")
    record = store.get_call(call.call_id)
    assert record is not None
    assert record.answered_at is not None
    assert any("store writes failing; retrying" in line for line in served.output)
    assert store.count_active_calls() == 0
    store.close()
