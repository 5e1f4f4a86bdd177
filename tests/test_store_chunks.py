"""Lists of ids go into IN padded and in chunks: few distinct statements, the same rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from callcenter.call.vocabulary import CallOutcome
from callcenter.store import Store
from callcenter.store.engine import IN_CHUNK, padded_chunks
from callcenter.store.leases import LeaseStore
from callcenter.store.operators import OperatorStore
from callcenter.store.schema import leases
from tests.test_store import T0, claim, new_call

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

TTL = timedelta(seconds=6)
MANY = [f"rtc_{n}" for n in range(300)]  # two chunks: 256 and 44 (padded to 64)
HELD = ["rtc_0", "rtc_150", "rtc_299"]  # in both chunks, one at each end


def test_ids_are_split_into_chunks_padded_to_a_power_of_two() -> None:
    """600 ids: 256, 256, then 88 padded to 128 with the last id; order kept."""
    chunks = list(padded_chunks(range(600)))
    assert [len(c) for c in chunks] == [IN_CHUNK, IN_CHUNK, 128]
    assert chunks[0] == list(range(256))
    assert chunks[1] == list(range(256, 512))
    assert chunks[2] == [*range(512, 600), *[599] * 40]


def test_short_lists_are_padded_and_exact_powers_are_kept() -> None:
    """1 stays 1, 3 becomes 4, 4 stays 4, 5 becomes 8."""
    assert list(padded_chunks(["a"])) == [["a"]]
    assert list(padded_chunks("abc")) == [["a", "b", "c", "c"]]
    assert list(padded_chunks("abcd")) == [["a", "b", "c", "d"]]
    assert list(padded_chunks("abcde")) == [["a", "b", "c", "d", "e", "e", "e", "e"]]


def test_no_ids_give_no_chunk() -> None:
    """An empty list gives no statement to run."""
    assert list(padded_chunks([])) == []


def held_leases(store: Store) -> None:
    for call_id in HELD:
        claim(store, new_call(call_id, f"wh_{call_id}"), owner="host-a:1:aa")
        store.mark_answered(call_id, outcome=CallOutcome.ACCEPTED, at=T0)


def test_a_renewal_over_chunks_matches_the_unpadded_query(store: Store) -> None:
    """Renewing 300 ids in padded chunks renews exactly the rows one plain IN selects."""
    held_leases(store)
    with store.engine.connect() as conn:
        plain = set(conn.execute(select(leases.c.call_id).where(leases.c.call_id.in_(MANY))))
    now = T0 + timedelta(seconds=1)
    renewed = LeaseStore(store).renew(MANY, owner="host-a:1:aa", now=now, until=now + TTL)
    assert renewed == {row.call_id for row in plain} == set(HELD)


def test_a_command_poll_over_chunks_claims_every_command_oldest_first(store: Store) -> None:
    """Commands of calls in both chunks are all claimed, in the order they were queued."""
    held_leases(store)
    operators = OperatorStore(store)
    queued = [
        operators.add_command(call_id, "hangup", {}, operator="ada", at=T0)
        for call_id in reversed(HELD)
    ]
    claimed = operators.claim_commands(MANY, owner="host-a:1:aa")
    assert [c.id for c in claimed] == queued
    assert [c.call_id for c in claimed] == list(reversed(HELD))


def test_lists_of_every_length_share_a_few_statements(store: Store) -> None:
    """Renewals of 1 to 300 ids run as at most nine distinct SQL texts, not 300."""
    texts: set[str] = set()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE LEASES"):
            texts.add(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    lease_store, now = LeaseStore(store), T0 + timedelta(seconds=1)
    for length in range(1, len(MANY) + 1):
        lease_store.renew(MANY[:length], owner="host-a:1:aa", now=now, until=now + TTL)
    event.remove(store.engine, "before_cursor_execute", seen)
    assert len(texts) <= 9
