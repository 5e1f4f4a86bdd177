"""Two nodes on one PostgreSQL database: one is killed, the other takes its calls over."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callcenter.emulator import EmulatorThread
from callcenter.store import Store
from tests.takeover_support import (
    LONG,
    TALK_ACROSS,
    TOOL_ACROSS,
    check_continued,
    check_interrupted,
    check_no_slot_held,
    children,
    holders,
    kill_node,
    place,
    serve,
    wait_ended,
    wait_reattached,
    wait_settled,
)

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run


@pytest.fixture
def postgres_url(store_url: str) -> str:
    """The test's PostgreSQL database (SQLite is one machine's store)."""
    if not store_url.startswith("postgresql"):
        pytest.skip("several nodes share a PostgreSQL database")
    return store_url


def test_a_killed_node_s_calls_are_taken_over_by_the_other(
    emulator: EmulatorThread, controller_env: dict[str, str], postgres_url: str, tmp_path: Path
) -> None:
    """Webhooks spread over two nodes; one SIGKILLed: the other reattaches its calls ≤ 10 s."""
    lost = serve(tmp_path, controller_env, name="lost")
    kept = serve(tmp_path, controller_env, name="kept")
    try:
        on_lost = place(emulator, lost.webhook_url, TALK_ACROSS, 3)
        [tooling] = place(emulator, lost.webhook_url, TOOL_ACROSS, 1)
        on_kept = place(emulator, kept.webhook_url, TALK_ACROSS, 3)
        calls = [*on_lost, tooling, *on_kept]
        with Store.open(postgres_url) as store:
            wait_settled(store, calls)
            by_pid = holders(store, calls)
            lost_pids, kept_pids = set(children(lost.process.pid)), set(children(kept.process.pid))
            assert {c.call_id for p in lost_pids for c in by_pid.get(p, [])} == {
                c.call_id for c in [*on_lost, tooling]
            }
            killed = time.monotonic()
            kill_node(lost)
            reattached = wait_reattached([*on_lost, tooling], killed)
            print(f"\ntwo nodes: 4 calls reattached, worst {reattached.worst:.2f}s")
            assert reattached.worst <= 10.0, reattached.seconds
            assert set(holders(store, [*on_lost, tooling])) <= kept_pids
            for call in on_kept:  # held by the kept node all along: just end them
                emulator.caller_hangs_up(call.call_id)
            wait_ended(store, calls)
            check_continued(store, on_lost)
            check_interrupted(tooling)
            check_no_slot_held(store)
    finally:
        lost.stop()
        kept.stop()


@pytest.mark.skipif(not LONG, reason="long variant: set CALLCENTER_LONG_TESTS=1")
def test_two_hundred_calls_of_a_killed_node_are_taken_over(
    emulator: EmulatorThread, controller_env: dict[str, str], postgres_url: str, tmp_path: Path
) -> None:
    """200 live calls on a killed node: the other node reattaches all of them ≤ 10 s."""
    lost = serve(tmp_path, controller_env, name="lost")
    kept = serve(tmp_path, controller_env, name="kept")
    try:
        calls = place(emulator, lost.webhook_url, TALK_ACROSS, 200)
        with Store.open(postgres_url) as store:
            wait_settled(store, calls, timeout=120)
            killed = time.monotonic()
            kill_node(lost)
            reattached = wait_reattached(calls, killed, timeout=60)
            print(f"\ntwo nodes: 200 calls reattached, worst {reattached.worst:.2f}s")
            assert reattached.worst <= 10.0
            wait_ended(store, calls, timeout=180)
            check_continued(store, calls)
            check_no_slot_held(store)
    finally:
        lost.stop()
        kept.stop()
