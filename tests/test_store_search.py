"""The store's call search: outcome, ticket and transcript words, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command

from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.store import Store
from callcenter.store.engine import create_store_engine
from callcenter.store.operators import CallFilter, OperatorStore
from callcenter.store.search import words
from callcenter.store.versioning import _alembic_config
from tests.test_store import T0, claim, new_call

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run


def said(store: Store, call_id: str, *lines: str) -> None:
    """Record ``lines`` as the caller's transcript of ``call_id``."""
    for seq, line in enumerate(lines):
        data = {"speaker": "caller", "text": line, "seq": seq}
        store.add_event(call_id, EventKind.TRANSCRIPT, data, T0 + timedelta(seconds=seq))


def found(store: Store, where: CallFilter) -> list[str]:
    """The ids of the calls ``where`` selects, newest first."""
    return [c.call_id for c in OperatorStore(store).search_calls(where, limit=50)]


def test_words_drop_search_syntax() -> None:
    """A query's words are lower-cased with quotes, operators and brackets dropped."""
    assert words('"Parcel" OR NEAR(late* -x') == ["parcel", "or", "near", "late", "x"]


def test_search_finds_calls_by_transcript_words_outcome_and_ticket(store: Store) -> None:
    """A line holding every word selects its call; outcome and ticket narrow; deletes unindex."""
    for n, call_id in enumerate(("rtc_a", "rtc_b", "rtc_c")):
        claim(store, new_call(call_id, f"wh_{n}", received_at=T0 + timedelta(minutes=n)))
    said(store, "rtc_a", "Where is my parcel?", "It was due Monday.")
    said(store, "rtc_b", "I want a refund for the parcel.")
    store.record_outcome("rtc_b", outcome=CallOutcome.COMPLETED, at=T0)
    store.record_handoff("rtc_a", ticket="T-1", trigger="human", summary=None, at=T0)
    assert found(store, CallFilter(words=("parcel",))) == ["rtc_b", "rtc_a"]
    assert found(store, CallFilter(words=("parcel", "where"))) == ["rtc_a"]
    assert found(store, CallFilter(words=("parcel", "monday"))) == []  # not in one line
    assert found(store, CallFilter(words=tuple(words('"PARCEL" NEAR(')))) == []
    assert found(store, CallFilter(words=("parcel",), outcome="completed")) == ["rtc_b"]
    assert found(store, CallFilter(ticket="T-1")) == ["rtc_a"]
    store.release_claim("rtc_a")  # still ringing: its row and lines go
    assert found(store, CallFilter(words=("parcel",))) == ["rtc_b"]


def test_the_migration_indexes_lines_stored_before_it(store_url: str) -> None:
    """Lines written at revision 0006 are found once the search revision is applied."""
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0006")
    engine.dispose()
    store = Store.open(store_url)
    try:
        claim(store, new_call("rtc_old", "wh_old"))
        said(store, "rtc_old", "An old complaint about billing.")
        store.migrate()
        assert found(store, CallFilter(words=("billing",))) == ["rtc_old"]
    finally:
        store.close()
