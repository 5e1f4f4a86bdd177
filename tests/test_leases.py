"""Sideband leases in the store: held, renewed, expired, taken by one taker, released."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from callcenter.call.vocabulary import CallOutcome
from callcenter.emulator import EmulatorThread, Wait
from callcenter.store import Store, wakeups
from callcenter.store.calls import CLAIM_LEASE
from callcenter.store.leases import CHANNEL, LeaseStore, TakenCall
from callcenter.store.schema import leases
from tests.harness import InProcessController, wait_for
from tests.test_store import T0, claim, new_call

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

TTL = timedelta(seconds=6)
RINGING_BOUND = timedelta(seconds=30)


@pytest.fixture
def lease_store(store: Store) -> LeaseStore:
    """The leases table of the test's migrated store."""
    return LeaseStore(store)


def answered(store: Store, call_id: str, owner: str = "host-a:1:aa") -> None:
    """A call claimed by ``owner`` and answered (active), its lease from the claim."""
    claim(store, new_call(call_id, f"wh_{call_id}"), owner=owner)
    store.mark_answered(call_id, outcome=CallOutcome.ACCEPTED, at=T0)


def take(lease_store: LeaseStore, owner: str, at: timedelta) -> list[TakenCall]:
    now = T0 + at
    return lease_store.take(
        owner=owner, now=now, until=now + TTL, ringing_before=now - RINGING_BOUND, limit=50
    )


def lease_rows(store: Store) -> dict[str, tuple[str, object]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(leases.c.call_id, leases.c.owner, leases.c.expires_at))
        return {row.call_id: (row.owner, row.expires_at) for row in rows}


def test_a_claim_holds_a_lease(store: Store) -> None:
    """Claiming a call writes its lease for the claimer."""
    claim(store, owner="host-a:1:aa")
    assert lease_rows(store) == {"rtc_1": ("host-a:1:aa", T0 + timedelta(seconds=10))}


def test_the_cap_counts_live_leases_only(store: Store, lease_store: LeaseStore) -> None:
    """An active row whose lease expired holds no slot; once taken over it holds one again."""
    answered(store, "rtc_1")
    answered(store, "rtc_2")
    assert store.count_active_calls(T0 + timedelta(seconds=1)) == 2
    lease_store.renew(["rtc_2"], owner="host-a:1:aa", now=T0, until=T0 + timedelta(seconds=60))
    assert store.count_active_calls(T0 + timedelta(seconds=20)) == 1
    take(lease_store, "host-b:2:bb", at=timedelta(seconds=20))
    assert store.count_active_calls(T0 + timedelta(seconds=21)) == 2


def test_an_ended_call_loses_its_lease(store: Store) -> None:
    """Recording a call's end removes its lease in the same transaction."""
    answered(store, "rtc_1")
    store.record_outcome("rtc_1", outcome=CallOutcome.COMPLETED, at=T0)
    assert lease_rows(store) == {}


def test_renew_returns_the_leases_still_held(store: Store, lease_store: LeaseStore) -> None:
    """Renewal extends this owner's live leases and leaves out one taken by another owner."""
    answered(store, "rtc_1")
    answered(store, "rtc_2")
    assert len(take(lease_store, "host-b:2:bb", at=timedelta(seconds=11))) == 2
    now = T0 + timedelta(seconds=12)
    kept = lease_store.renew(["rtc_1", "rtc_2"], owner="host-a:1:aa", now=now, until=now + TTL)
    assert kept == set()
    renewed = lease_store.renew(["rtc_1"], owner="host-b:2:bb", now=now, until=now + TTL)
    assert renewed == {"rtc_1"}


def test_an_expired_lease_is_not_revived_by_a_late_renewal(
    store: Store, lease_store: LeaseStore
) -> None:
    """A holder that renews after its lease expired gets nothing back: it must let go."""
    answered(store, "rtc_1")
    now = T0 + timedelta(seconds=11)
    assert lease_store.renew(["rtc_1"], owner="host-a:1:aa", now=now, until=now + TTL) == set()


def test_a_live_lease_is_not_taken(store: Store, lease_store: LeaseStore) -> None:
    """A lease before its expiry is left to its holder."""
    answered(store, "rtc_1")
    assert take(lease_store, "host-b:2:bb", at=timedelta(seconds=5)) == []


def test_each_expired_lease_goes_to_one_taker(store: Store, lease_store: LeaseStore) -> None:
    """Eight takers racing for twenty expired leases take each exactly once."""
    for n in range(20):
        answered(store, f"rtc_{n}")
    start = threading.Barrier(8)

    def taker(n: int) -> list[str]:
        start.wait()
        return [
            t.record.call_id for t in take(lease_store, f"node-{n}:1:{n}", timedelta(seconds=11))
        ]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(taker, range(8)))
    taken = [call_id for result in results for call_id in result]
    assert sorted(taken) == sorted(f"rtc_{n}" for n in range(20))
    owners = {owner for owner, _ in lease_rows(store).values()}
    assert owners <= {f"node-{n}:1:{n}" for n in range(8)}


def test_a_taken_call_carries_its_resume_state(store: Store, lease_store: LeaseStore) -> None:
    """The taker gets the state the holder saved, the holder's id and the takeover count."""
    answered(store, "rtc_1")
    lease_store.save_states({"rtc_1": {"route": "support", "attaches": 1}}, owner="host-a:1:aa")
    [taken] = take(lease_store, "host-b:2:bb", at=timedelta(seconds=11))
    assert taken.state == {"route": "support", "attaches": 1}
    assert (taken.previous_owner, taken.takeovers) == ("host-a:1:aa", 1)
    assert taken.record.owner == "host-b:2:bb"


def test_a_released_lease_is_taken_at_once(store: Store, lease_store: LeaseStore) -> None:
    """A drain's release expires the lease now and writes the last state."""
    answered(store, "rtc_1")
    lease_store.release({"rtc_1": {"route": "support"}}, owner="host-a:1:aa", now=T0)
    [taken] = take(lease_store, "host-b:2:bb", at=timedelta(0))
    assert taken.state == {"route": "support"}


def test_rows_from_before_leases_are_adopted(store: Store, lease_store: LeaseStore) -> None:
    """An active call with no lease (a dead owner's, from before leases) becomes takeable."""
    answered(store, "rtc_1")
    with store.engine.begin() as conn:
        conn.execute(leases.delete())
    assert lease_store.adopt_orphans(now=T0) == 1
    [taken] = take(lease_store, "host-b:2:bb", at=timedelta(0))
    assert taken.record.call_id == "rtc_1"


def test_a_call_left_ringing_by_a_dead_claimer_is_resolved(
    store: Store, lease_store: LeaseStore
) -> None:
    """Past the ringing bound a dead claimer's ringing call is taken and recorded failed."""
    claim(store, owner="host-a:1:aa")
    assert take(lease_store, "host-b:2:bb", at=timedelta(seconds=20)) == []
    [taken] = take(lease_store, "host-b:2:bb", at=timedelta(seconds=31))
    assert taken.record.status == "ringing"
    assert lease_store.resolve_unanswered("rtc_1", owner="host-b:2:bb", now=T0 + RINGING_BOUND)
    record = store.get_call("rtc_1")
    assert record is not None
    assert (record.status, record.outcome) == ("failed", "failed")
    assert store.count_active_calls() == 0
    assert lease_rows(store) == {}


def test_postgres_wakes_takers_when_a_lease_is_released(
    store: Store, lease_store: LeaseStore
) -> None:
    """On PostgreSQL a release notifies every listener (no waiting for the next scan)."""
    if not wakeups.supported(store.engine):
        pytest.skip("notifications are PostgreSQL's")
    woken = threading.Event()
    listener = wakeups.Listener(store.engine, CHANNEL, woken.set, pause=0.1)
    listener.start()
    try:
        wait_for(listener.listening.is_set, what="the listener to listen")
        answered(store, "rtc_1")
        lease_store.release({"rtc_1": None}, owner="host-a:1:aa", now=T0)
        wait_for(woken.is_set, what="the notification")
    finally:
        listener.stop()


def test_a_held_call_s_claim_lease_is_renewed_at_the_keeper_s_next_tick(
    start_controller: Callable[..., InProcessController],
    emulator: EmulatorThread,
    store: Store,
) -> None:
    """Holding a call writes nothing; the keeper renews its claim's lease within a tick.

    With 9 s leases the keeper's own renewal comes 3 s after start-up, so a lease renewed
    sooner was renewed as a call started here.
    """
    start_controller(env={"CALLCENTER_LEASE_SECONDS": "9"})
    call = emulator.place_call(to_number="+18005550100", script=[Wait(30)])

    def renewed() -> bool:
        record = store.get_call(call.call_id)
        held = lease_rows(store).get(call.call_id)
        if record is None or held is None:
            return False
        return held[1] != record.claimed_at + CLAIM_LEASE

    wait_for(lambda: call.attaches >= 1, what="the sideband")
    wait_for(renewed, timeout=2.0, what="the claim's lease renewed")
