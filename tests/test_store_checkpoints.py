"""SQLite's WAL checkpoints (page copies, then an fsync) run in background writes, never
inside a webhook's claim, which a ringing caller waits on."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.call.vocabulary import DecisionKind, EventKind
from callcenter.store import DecisionRecord, NewCall, Store, default_sqlite_url
from callcenter.store.engine import CHECKPOINT_EVERY

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
ACCEPT = DecisionRecord(DecisionKind.ACCEPT, "support", "matched route support", None, None)
# SQLite's default wal_autocheckpoint: a commit past this many WAL pages would checkpoint.
SQLITE_AUTOCHECKPOINT_PAGES = 1000


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    url = default_sqlite_url(tmp_path)
    store = Store.open(url)
    store.migrate()
    yield store, tmp_path / "callcenter.db"
    store.close()


def wal_resets(database: Path) -> int:
    """The WAL header's checkpoint sequence number: it grows each time a checkpoint that
    copied the whole WAL lets the next writer start the WAL over."""
    header = Path(f"{database}-wal").read_bytes()[:16]
    return int(struct.unpack(">I", header[12:16])[0])


def wal_pages(database: Path, store: Store) -> int:
    with store.engine.connect() as conn:
        page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    return (Path(f"{database}-wal").stat().st_size - 32) // (page_size + 24)


def claim(store: Store, n: int) -> None:
    call = NewCall(
        call_id=f"rtc_{n:032x}",
        webhook_id=f"wh_{n}",
        event_id=f"evt_{n}",
        received_at=T0,
        caller_number="+14155550100",
        caller_uri=None,
        caller_name=None,
        dialled_number="+18005550100",
        dialled_uri=None,
        sip_headers=[("X-Padding", "x" * 400)],
        media_security=None,
    )
    store.claim_call(
        call, lambda _live: ACCEPT, owner="host:1", stale_after=timedelta(seconds=15), now=T0
    )


def test_claims_never_checkpoint_however_long_the_wal_grows(
    database: tuple[Store, Path],
) -> None:
    store, path = database
    claim(store, 0)
    resets = wal_resets(path)
    # More claims than a background writer's checkpoint period, and than SQLite's own
    # mark (which, were it on, would keep the WAL from growing past it).
    for n in range(1, 2 * CHECKPOINT_EVERY):
        claim(store, n)
    assert wal_pages(path, store) > 2 * SQLITE_AUTOCHECKPOINT_PAGES
    assert wal_resets(path) == resets, "a claim's commit checkpointed the WAL"


def test_background_writes_checkpoint_every_so_many_commits(
    database: tuple[Store, Path],
) -> None:
    store, path = database
    claim(store, 0)
    resets = wal_resets(path)
    call_id = f"rtc_{0:032x}"
    # The due checkpoint runs after the last of these; the write after it starts the WAL over.
    for i in range(CHECKPOINT_EVERY + 1):
        store.add_event(call_id, EventKind.TRANSCRIPT, {"role": "caller", "text": str(i)}, T0)
    assert wal_resets(path) == resets + 1
