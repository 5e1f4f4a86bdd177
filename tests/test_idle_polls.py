"""The store's pollers look before they lock: with nothing to claim, a pass of the
notification lanes, the analysis worker or the operator-command poller ends while another
process holds SQLite's write lock, so that idle polls never queue the webhooks' claims."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.store import Store
from callcenter.store.analyses import AnalysisStore
from callcenter.store.operators import OperatorStore
from callcenter.store.outbox import OutboxStore
from tests.harness import wait_for
from tests.test_store import claim, new_call


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store with one live call, whose write lock another connection holds."""
    path = tmp_path / "callcenter.db"
    store = Store.open(f"sqlite:///{path}")
    store.migrate()
    claim(store, new_call("rtc_idle", "wh_idle"))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a writer elsewhere, for as long as it likes
    try:
        yield store
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()


def ends_while_locked(poll: Callable[[], object]) -> object:
    """What ``poll`` returned, failing if it waits for the lock (SQLite's busy timeout is 5 s)."""
    outcome: list[object] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(poll())
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    wait_for(done.is_set, what="the idle poll to end while the lock is held", timeout=2.0)
    return outcome[0]


def test_an_idle_outbox_claim_reads_only(locked_store: Store) -> None:
    outbox = OutboxStore(locked_store.engine, locked_store.subscribers)
    now = datetime.now(UTC)
    found = ends_while_locked(
        lambda: outbox.claim(owner="me", now=now, until=now + timedelta(seconds=30))
    )
    assert found == []


def test_an_idle_analysis_claim_reads_only(locked_store: Store) -> None:
    analyses = AnalysisStore(locked_store.engine, locked_store.subscribers)
    now = datetime.now(UTC)
    found = ends_while_locked(lambda: analyses.claim(now=now, until=now + timedelta(seconds=30)))
    assert found is None


def test_a_command_poll_of_held_calls_without_commands_reads_only(locked_store: Store) -> None:
    operators = OperatorStore(locked_store)
    found = ends_while_locked(lambda: operators.claim_commands(["rtc_idle"], owner="me"))
    assert found == []
