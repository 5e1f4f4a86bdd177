"""The store on real databases: a SQLite file, and PostgreSQL when configured."""

from __future__ import annotations

import multiprocessing
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from callcenter.call.vocabulary import CallOutcome, DecisionKind
from callcenter.errors import StoreError
from callcenter.store import (
    ClaimResult,
    DecisionRecord,
    NewCall,
    NewEvent,
    Store,
    default_sqlite_url,
)
from callcenter.store.engine import create_store_engine
from callcenter.store.schema import metadata
from callcenter.store.search import SEARCH_OBJECTS
from callcenter.store.versioning import head_revision

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

T0 = datetime(2025, 11, 22, 12, 0, tzinfo=UTC)
STALE_AFTER = timedelta(seconds=30)
ACCEPT = DecisionRecord(
    decision=DecisionKind.ACCEPT,
    route="support",
    reason="matched route support",
    reject_code=None,
    target=None,
)


def new_call(
    call_id: str = "rtc_1", webhook_id: str = "wh_1", received_at: datetime = T0
) -> NewCall:
    return NewCall(
        call_id=call_id,
        webhook_id=webhook_id,
        event_id=f"evt_{webhook_id}",
        received_at=received_at,
        caller_number="+14155550100",
        caller_uri="sip:+14155550100@trunk.example.com",
        caller_name="Ada",
        dialled_number="+18005550100",
        dialled_uri="sip:+18005550100@sip.api.openai.com",
        sip_headers=[("From", "<sip:+14155550100@trunk.example.com>"), ("X-Tag", "a")],
        media_security="srtp",
    )


def accept(_active: int) -> DecisionRecord:
    return ACCEPT


def claim(
    store: Store,
    call: NewCall | None = None,
    *,
    owner: str = "host-a:1",
    now: datetime = T0,
) -> tuple[ClaimResult, DecisionRecord | None]:
    return store.claim_call(
        call or new_call(), accept, owner=owner, stale_after=STALE_AFTER, now=now
    )


def claim_with(store: Store, call_id: str, outcome: CallOutcome) -> None:
    claim(store, new_call(call_id, f"wh_{call_id}"))
    if outcome.final:
        store.record_outcome(call_id, outcome=outcome, at=T0)
    else:
        store.mark_answered(call_id, outcome=outcome, at=T0)


# -- schema -----------------------------------------------------------------------------------


def test_migrate_creates_the_schema_on_an_empty_database(store_url: str) -> None:
    """migrate() on an empty database brings it to the head revision."""
    with Store.open(store_url) as store:
        store.migrate()
        store.check()


def test_migrate_again_keeps_the_data(store: Store) -> None:
    """A second migrate() is a no-op that keeps every row."""
    claim(store)
    store.migrate()
    store.check()
    assert store.get_call("rtc_1") is not None


def test_concurrent_migrations_all_succeed(store_url: str) -> None:
    """Several workers migrating a fresh database at once all succeed."""
    with Store.open(store_url) as store, ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(store.migrate) for _ in range(4)]:
            future.result()
        store.check()


def test_check_refuses_a_database_that_was_never_migrated(store_url: str) -> None:
    """check() on an empty database says which revision it needs and how to get there."""
    with (
        Store.open(store_url) as store,
        pytest.raises(
            StoreError,
            match=rf"at revision none, expected {head_revision()}; run `callcenter migrate`",
        ),
    ):
        store.check()


def test_tables_match_the_migrations(store: Store, store_url: str) -> None:
    """The migrated schema is exactly the one schema.py describes."""
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": _not_search})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def _not_search(name: str | None, kind: str, parents: object) -> bool:
    """Whether a schema comparison looks at ``name``: not at the transcript search's objects."""
    return not (name or "").startswith(tuple(SEARCH_OBJECTS))


def test_writing_to_a_database_that_was_never_migrated_raises_store_error(store_url: str) -> None:
    """A write on missing tables fails as StoreError, not as a SQLAlchemy error."""
    with Store.open(store_url) as store, pytest.raises(StoreError, match="claim_call failed"):
        claim(store)


# -- claiming ---------------------------------------------------------------------------------


def test_first_delivery_claims_the_call(store: Store) -> None:
    """The first delivery claims the call and stores it ringing with its decision."""
    assert claim(store) == (ClaimResult.CLAIMED, ACCEPT)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.owner, call.decision, call.route) == (
        "ringing",
        "host-a:1",
        "accept",
        "support",
    )
    assert call.decision_reason == "matched route support"
    assert call.sip_headers == (("From", "<sip:+14155550100@trunk.example.com>"), ("X-Tag", "a"))
    assert (call.received_at, call.claimed_at, call.decided_at, call.updated_at) == (T0,) * 4
    assert (call.answered_at, call.ended_at, call.outcome, call.error) == (None,) * 4


def test_redelivery_is_a_duplicate_and_is_counted(store: Store) -> None:
    """The same webhook delivered again is a DUPLICATE, and its copies are counted."""
    claim(store)
    later = T0 + timedelta(seconds=5)
    assert claim(store, new_call(received_at=later), now=later) == (ClaimResult.DUPLICATE, None)
    seen = store.webhook_event("wh_1")
    assert seen is not None
    assert (seen.deliveries, seen.received_at, seen.last_seen_at) == (2, T0, later)
    assert (seen.event_id, seen.event_type, seen.call_id) == (
        "evt_wh_1",
        "realtime.call.incoming",
        "rtc_1",
    )


def test_another_webhook_for_a_claimed_call_is_a_duplicate(store: Store) -> None:
    """A second webhook (new webhook-id) for a claimed call is a DUPLICATE."""
    claim(store)
    assert claim(store, new_call(webhook_id="wh_2"), owner="host-b:2")[0] is ClaimResult.DUPLICATE
    second = store.webhook_event("wh_2")
    assert second is not None
    assert second.deliveries == 1
    call = store.get_call("rtc_1")
    assert call is not None
    assert call.owner == "host-a:1"


def test_concurrent_claims_from_threads_claim_once(store: Store) -> None:
    """Sixteen threads racing for one call: exactly one claims it, and decides once."""
    barrier = threading.Barrier(16)
    decided: list[int] = []

    def race(n: int) -> ClaimResult:
        def decide(active: int) -> DecisionRecord:
            decided.append(active)
            return ACCEPT

        barrier.wait(timeout=30)
        result, _ = store.claim_call(
            new_call(webhook_id=f"wh_{n % 4}"),
            decide,
            owner=f"host:{n}",
            stale_after=STALE_AFTER,
            now=T0,
        )
        return result

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(race, range(16)))
    assert results.count(ClaimResult.CLAIMED) == 1
    assert decided == [0]
    deliveries = [store.webhook_event(f"wh_{n}") for n in range(4)]
    assert [d.deliveries if d else 0 for d in deliveries] == [4, 4, 4, 4]


def _claim_in_process(url: str, n: int, barrier: Any, results: Any) -> None:
    try:
        with Store.open(url) as store:
            barrier.wait(timeout=60)
            result, _ = store.claim_call(
                new_call(webhook_id=f"wh_{n}"),
                accept,
                owner=f"proc:{n}",
                stale_after=STALE_AFTER,
                now=T0,
            )
        results.put(result.value)
    except Exception as exc:  # reported to the test, which fails on it
        results.put(repr(exc))


def test_concurrent_claims_from_processes_claim_once(store: Store, store_url: str) -> None:
    """Four processes racing for one call: exactly one claims it."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(store_url, n, barrier, results))
        for n in range(4)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(outcomes) == ["claimed", "duplicate", "duplicate", "duplicate"]


def test_stale_ringing_claim_is_taken_over(store: Store) -> None:
    """A call left ringing longer than stale_after is claimed by the next delivery."""
    claim(store)
    later = T0 + STALE_AFTER + timedelta(seconds=1)
    result = claim(store, new_call(webhook_id="wh_2"), owner="host-b:2", now=later)
    assert result == (ClaimResult.CLAIMED, ACCEPT)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.owner, call.claimed_at, call.decided_at) == (
        "ringing",
        "host-b:2",
        later,
        later,
    )


def test_ringing_claim_is_not_taken_over_before_stale_after(store: Store) -> None:
    """A call ringing for less than stale_after stays with its owner."""
    claim(store)
    result = claim(store, new_call(webhook_id="wh_2"), owner="host-b:2", now=T0 + STALE_AFTER)
    assert result == (ClaimResult.DUPLICATE, None)
    call = store.get_call("rtc_1")
    assert call is not None
    assert call.owner == "host-a:1"


def test_answered_call_is_never_taken_over(store: Store) -> None:
    """Once answered, a call is a DUPLICATE for any later delivery, however late."""
    claim(store)
    store.mark_answered("rtc_1", at=T0)
    later = T0 + timedelta(hours=1)
    assert claim(store, new_call(webhook_id="wh_2"), now=later)[0] is ClaimResult.DUPLICATE


def test_decide_sees_the_other_live_calls(store: Store) -> None:
    """decide() gets the number of ringing and active calls, not ended or rejected ones."""
    claim(store, new_call("rtc_ringing", "wh_ringing"))
    claim_with(store, "rtc_active", CallOutcome.ACCEPTED)
    claim_with(store, "rtc_referred", CallOutcome.REFERRED)
    claim_with(store, "rtc_rejected", CallOutcome.REJECTED)
    claim_with(store, "rtc_ended", CallOutcome.COMPLETED)
    seen: list[int] = []

    def decide(active: int) -> DecisionRecord:
        seen.append(active)
        return ACCEPT

    store.claim_call(new_call(), decide, owner="host-a:1", stale_after=STALE_AFTER, now=T0)
    assert seen == [2]
    assert store.count_active_calls() == 3


def test_takeover_does_not_count_the_call_itself(store: Store) -> None:
    """decide() on a stale takeover does not count the call being taken over."""
    claim(store)
    seen: list[int] = []

    def decide(active: int) -> DecisionRecord:
        seen.append(active)
        return ACCEPT

    later = T0 + timedelta(minutes=5)
    store.claim_call(new_call(), decide, owner="host-b:2", stale_after=STALE_AFTER, now=later)
    assert seen == [0]


def test_failing_decide_leaves_no_trace(store: Store) -> None:
    """If decide() raises, nothing is stored and the next delivery can claim the call."""

    def explode(_active: int) -> DecisionRecord:
        raise RuntimeError("routing broke")

    with pytest.raises(RuntimeError, match="routing broke"):
        store.claim_call(new_call(), explode, owner="host-a:1", stale_after=STALE_AFTER, now=T0)
    assert store.get_call("rtc_1") is None
    assert store.webhook_event("wh_1") is None
    assert claim(store)[0] is ClaimResult.CLAIMED


def test_released_claim_can_be_claimed_again(store: Store) -> None:
    """release_claim() forgets a ringing call and its events, so a redelivery claims it."""
    claim(store)
    store.add_event("rtc_1", "accept_failed", {"status": 500}, T0)
    store.release_claim("rtc_1")
    assert store.get_call("rtc_1") is None
    assert store.events("rtc_1") == []
    assert claim(store)[0] is ClaimResult.CLAIMED


def test_release_claim_keeps_an_answered_call(store: Store) -> None:
    """release_claim() leaves a call alone once it was answered."""
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    store.release_claim("rtc_1")
    assert store.get_call("rtc_1") is not None


def test_release_claim_keeps_a_claim_taken_over_by_another_owner(store: Store) -> None:
    """release_claim(owner=...) does not release a claim another worker took over."""
    claim(store)
    claim(store, new_call(webhook_id="wh_2"), owner="host-b:2", now=T0 + timedelta(minutes=1))
    store.release_claim("rtc_1", owner="host-a:1")
    call = store.get_call("rtc_1")
    assert call is not None
    assert call.owner == "host-b:2"


# -- state changes ----------------------------------------------------------------------------


def test_mark_answered_makes_the_call_active(store: Store) -> None:
    """An accepted call becomes active with its outcome and answer time."""
    claim(store)
    answered = T0 + timedelta(milliseconds=300)
    store.mark_answered("rtc_1", at=answered)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.outcome, call.answered_at, call.ended_at, call.updated_at) == (
        "active",
        "accepted",
        answered,
        None,
        answered,
    )


def test_mark_answered_refuses_the_outcome_of_a_call_that_is_over(store: Store) -> None:
    """mark_answered() only takes the outcome of a live call (accepted or transferring)."""
    claim(store)
    with pytest.raises(ValueError, match="call that is over"):
        store.mark_answered("rtc_1", outcome=CallOutcome.COMPLETED, at=T0)


def test_mark_answered_leaves_an_ended_call_alone(store: Store) -> None:
    """mark_answered() changes only a ringing call."""
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    store.record_outcome("rtc_1", outcome=CallOutcome.COMPLETED, at=T0)
    store.mark_answered("rtc_1", at=T0)
    call = store.get_call("rtc_1")
    assert call is not None
    assert call.status == "ended"


@pytest.mark.parametrize("outcome", list(CallOutcome))
def test_every_outcome_leaves_the_status_it_names(store: Store, outcome: CallOutcome) -> None:
    """Each outcome, recorded on a ringing call, leaves the call in the outcome's status."""
    claim(store)
    if outcome.final:
        store.record_outcome("rtc_1", outcome=outcome, at=T0)
    else:
        store.mark_answered("rtc_1", outcome=outcome, at=T0)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.outcome) == (outcome.status, outcome)
    assert (call.ended_at is not None) == outcome.final


def test_caller_gone_while_ringing_is_ended_not_failed(store: Store) -> None:
    """A caller who hangs up while it rings ends the call: status ended, with the reason."""
    claim(store)
    store.record_outcome("rtc_1", outcome=CallOutcome.CALLER_GONE, error="accept: 404", at=T0)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.outcome, call.error, call.ended_at) == (
        "ended",
        "caller_gone",
        "accept: 404",
        T0,
    )


def test_a_referred_call_records_the_target(store: Store) -> None:
    """A referred call keeps the target it was referred to and has left us at that time."""
    claim(store)
    store.record_outcome("rtc_1", outcome=CallOutcome.REFERRED, target="tel:+14155550123", at=T0)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.target, call.ended_at) == ("referred", "tel:+14155550123", T0)


def test_transfer_of_an_active_call_keeps_its_answer_time(store: Store) -> None:
    """An active call transferred later becomes referred and keeps the time it was answered."""
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    later = T0 + timedelta(minutes=2)
    target = "sip:desk@pbx.example.com"
    store.record_outcome("rtc_1", outcome=CallOutcome.TRANSFERRED, target=target, at=later)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.outcome, call.target, call.answered_at, call.updated_at) == (
        "referred",
        "transferred",
        target,
        T0,
        later,
    )


def test_a_rejected_call_is_over_at_once(store: Store) -> None:
    """A rejected call is over as soon as the reject succeeded."""
    claim(store)
    store.record_outcome("rtc_1", outcome=CallOutcome.REJECTED, at=T0)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.ended_at) == ("rejected", T0)
    assert store.count_active_calls() == 0


def test_record_outcome_refuses_the_outcome_of_a_live_call(store: Store) -> None:
    """record_outcome() only takes the outcome of a call that is over."""
    claim(store)
    with pytest.raises(ValueError, match="call that goes on"):
        store.record_outcome("rtc_1", outcome=CallOutcome.ACCEPTED, at=T0)


def test_an_ended_call_keeps_its_first_end(store: Store) -> None:
    """Ending an ended call, or failing it, is a no-op."""
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    store.record_outcome("rtc_1", outcome=CallOutcome.ENDED_BY_AGENT, at=T0)
    later = T0 + timedelta(seconds=1)
    store.record_outcome("rtc_1", outcome=CallOutcome.HUNG_UP_BY_CALLER, at=later)
    store.record_outcome("rtc_1", outcome=CallOutcome.FAILED, error="late", at=later)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.outcome, call.ended_at, call.error) == (
        "ended",
        "ended_by_agent",
        T0,
        None,
    )


def test_a_referred_call_keeps_its_transfer(store: Store) -> None:
    """A call that left us by a transfer does not end again when its sideband closes."""
    claim_with(store, "rtc_1", CallOutcome.REFERRED)
    store.record_outcome("rtc_1", outcome=CallOutcome.HUNG_UP_BY_CALLER, at=T0)
    call = store.get_call("rtc_1")
    assert call is not None
    assert (call.status, call.outcome) == ("referred", "referred")


def test_set_owner_records_and_clears_the_owner(store: Store) -> None:
    """set_owner() moves a call to another worker, or to nobody."""
    claim(store)
    store.set_owner("rtc_1", "host-b:2")
    assert getattr(store.get_call("rtc_1"), "owner", None) == "host-b:2"
    store.set_owner("rtc_1", None)
    assert getattr(store.get_call("rtc_1"), "owner", "missing") is None


# -- events and reading -----------------------------------------------------------------------


def test_events_come_back_in_order(store: Store) -> None:
    """A call's events are returned oldest first, and after_id pages through them."""
    claim(store)
    for n in range(5):
        store.add_event("rtc_1", "transcript", {"n": n, "text": f"line {n}"}, T0)
    events = store.events("rtc_1")
    assert [e.data["n"] for e in events] == [0, 1, 2, 3, 4]
    assert [e.kind for e in events] == ["transcript"] * 5
    assert [e.data["n"] for e in store.events("rtc_1", after_id=events[2].id)] == [3, 4]


def test_events_of_one_call_exclude_other_calls(store: Store) -> None:
    """events() returns only the events of the call asked for."""
    claim(store)
    claim(store, new_call("rtc_2", "wh_2"))
    store.add_event("rtc_1", "dtmf", {"digit": "1"}, T0)
    store.add_event("rtc_2", "dtmf", {"digit": "2"}, T0)
    assert [e.data for e in store.events("rtc_2")] == [{"digit": "2"}]


def test_event_for_an_unknown_call_raises_store_error(store: Store) -> None:
    """An event must belong to a stored call."""
    with pytest.raises(StoreError, match="add_event failed"):
        store.add_event("rtc_missing", "dtmf", {"digit": "1"}, T0)


def test_add_events_writes_a_batch_in_order(store: Store) -> None:
    """add_events() appends events of several calls in one go, keeping their order."""
    claim(store)
    claim(store, new_call("rtc_2", "wh_2"))
    store.add_events(
        [
            NewEvent("rtc_1", "dtmf", {"key": "1"}, T0),
            NewEvent("rtc_2", "dtmf", {"key": "2"}, T0),
            NewEvent("rtc_1", "dtmf", {"key": "3"}, T0),
        ]
    )
    assert [e.data["key"] for e in store.events("rtc_1")] == ["1", "3"]
    assert [e.data["key"] for e in store.events("rtc_2")] == ["2"]


def test_add_events_skips_an_event_whose_place_is_stored(store: Store) -> None:
    """An event given again with the same place is not stored twice; unplaced ones always are."""
    claim(store)
    first = [NewEvent("rtc_1", "dtmf", {"key": "1"}, T0, "rec:1"), NewEvent("rtc_1", "x", {}, T0)]
    store.add_events(first)
    store.add_events([*first, NewEvent("rtc_1", "dtmf", {"key": "2"}, T0, "rec:2")])
    assert [e.kind for e in store.events("rtc_1")] == ["dtmf", "x", "x", "dtmf"]


def test_transcript_is_in_conversation_order(store: Store) -> None:
    """transcript() sorts lines by their seq, whatever order they were stored in."""
    claim(store)
    store.add_event("rtc_1", "transcript", {"seq": 2, "speaker": "agent", "text": "Hi"}, T0)
    store.add_event("rtc_1", "dtmf", {"key": "1"}, T0)
    store.add_event("rtc_1", "transcript", {"seq": 1, "speaker": "caller", "text": "Hello"}, T0)
    assert [e.data["text"] for e in store.transcript("rtc_1")] == ["Hello", "Hi"]


def test_handoff_and_usage_are_recorded_on_the_call(store: Store) -> None:
    """record_handoff() and record_usage() fill the call's ticket, summary and token columns."""
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    store.record_handoff("rtc_1", ticket="CC-1", trigger="phrase", summary="Wants a refund.", at=T0)
    store.record_usage("rtc_1", {"input_tokens": 120, "output_tokens": 30, "responses": 2}, at=T0)
    record = store.get_call("rtc_1")
    assert record is not None
    assert (record.ticket, record.escalation_trigger, record.summary) == (
        "CC-1",
        "phrase",
        "Wants a refund.",
    )
    assert (record.input_tokens, record.output_tokens) == (120, 30)
    assert record.usage == {"input_tokens": 120, "output_tokens": 30, "responses": 2}


def test_latency_is_recorded_on_the_call(store: Store) -> None:
    """record_latency() keeps the call's greeting and turn waits, read back as given."""
    claim_with(store, "rtc_1", CallOutcome.ACCEPTED)
    assert store.get_call("rtc_1").latency is None  # type: ignore[union-attr]
    latency = {"greeting_ms": 412.5, "turn_ms": [[640.0, 0.0], [1210.0, 503.1]]}
    store.record_latency("rtc_1", latency, at=T0)
    record = store.get_call("rtc_1")
    assert record is not None
    assert record.latency == latency


def test_list_calls_newest_first_with_filters(store: Store) -> None:
    """list_calls() pages newest first and filters by status and received time."""
    for n in range(4):
        claim(store, new_call(f"rtc_{n}", f"wh_{n}", received_at=T0 + timedelta(minutes=n)))
    store.mark_answered("rtc_1", at=T0)
    assert [c.call_id for c in store.list_calls()] == ["rtc_3", "rtc_2", "rtc_1", "rtc_0"]
    assert [c.call_id for c in store.list_calls(limit=2)] == ["rtc_3", "rtc_2"]
    assert [c.call_id for c in store.list_calls(status="active")] == ["rtc_1"]
    before = T0 + timedelta(minutes=2)
    assert [c.call_id for c in store.list_calls(before=before)] == ["rtc_1", "rtc_0"]


def test_timestamps_come_back_in_utc(store: Store) -> None:
    """A time given in another zone comes back as the same instant in UTC."""
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    claim(store, new_call(received_at=paris), now=paris)
    call = store.get_call("rtc_1")
    assert call is not None
    assert call.received_at == T0
    assert call.received_at.tzinfo is UTC


def test_naive_timestamps_are_refused(store: Store) -> None:
    """A datetime without a time zone is refused rather than guessed."""
    with pytest.raises(StoreError, match="naive datetime"):
        claim(store, now=T0.replace(tzinfo=None))


def test_unknown_call_and_webhook_read_as_none(store: Store) -> None:
    """Reading what was never stored gives None."""
    assert store.get_call("rtc_missing") is None
    assert store.webhook_event("wh_missing") is None


# -- engines ----------------------------------------------------------------------------------


def test_default_sqlite_url_names_a_file_in_the_data_dir(tmp_path: Path) -> None:
    """The default database is callcenter.db in the data directory."""
    assert default_sqlite_url(tmp_path) == f"sqlite:///{tmp_path}/callcenter.db"


def test_sqlite_file_uses_write_ahead_logging(tmp_path: Path) -> None:
    """The SQLite file is created with its directory and switched to WAL."""
    url = default_sqlite_url(tmp_path / "nested" / "dir")
    with Store.open(url) as store:
        store.migrate()
    database = make_url(url).database
    assert database is not None
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_directory_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    """A data directory under a plain file fails as StoreError."""
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create the directory"):
        Store.open(default_sqlite_url(tmp_path / "file" / "data"))


def test_unsupported_database_raises_store_error() -> None:
    """Only SQLite and PostgreSQL URLs are accepted."""
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        Store.open("mysql://root@127.0.0.1/callcenter")


def test_url_is_shown_without_its_password() -> None:
    """Store.url masks the password, so it can be logged."""
    with Store.open("postgresql+psycopg://app:s3cret@127.0.0.1:5432/calls") as store:
        assert "s3cret" not in store.url
        assert store.url.startswith("postgresql+psycopg://app:")


def test_unreachable_postgres_fails_fast() -> None:
    """A PostgreSQL that does not answer fails check() with StoreError within seconds."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Store.open(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test") as store:
        started = time.monotonic()
        with pytest.raises(StoreError, match="check failed: OperationalError"):
            store.check()
        assert time.monotonic() - started < 3
