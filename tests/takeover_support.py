"""Support for the takeover suites: live calls over `callcenter serve`, faults, and checks.

A live call's script talks once, waits (as long as it takes) for the sideband to be
attached again by whoever takes the call over, talks again and hangs up; so a call that
is never taken over never ends, and each check below can fail.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select

from callcenter.emulator import EmulatedCall, EmulatorThread
from callcenter.emulator.script import HangUp, ModelCallTool, Say, Step, WaitFor
from callcenter.store import Store
from callcenter.store.schema import leases
from tests.harness import GunicornController, wait_for
from tests.sideband_support import CONFIG, GREETING, SUPPORT

# production: 6; takeover then comes within ttl + ttl/3 + an attach
LEASE_SECONDS = os.environ.get("CALLCENTER_TEST_LEASE_SECONDS", "1.5")
LONG = os.environ.get("CALLCENTER_LONG_TESTS") == "1"

# Talks, waits for the takeover's attach, talks again, hangs up.
TALK_ACROSS: tuple[Step, ...] = (
    Say("I need help with my order."),
    WaitFor("session.created", timeout=120),
    Say("Are you still there?"),
    HangUp(),
)
# The model calls a tool that never returns; after the takeover it must be answered.
TOOL_ACROSS: tuple[Step, ...] = (
    Say("Where is order 42?"),
    ModelCallTool("hold_line", {"order_id": "42"}),
    WaitFor("session.created", timeout=120),
    WaitFor("function_call_output", timeout=30),
    HangUp(),
)


def serve(
    tmp_path: Path,
    env: Mapping[str, str],
    *,
    workers: int = 2,
    name: str = "node",
    lease: bool = True,
    config_text: str = CONFIG,
) -> GunicornController:
    """`callcenter serve` on the test config, ready; with ``lease``, short leases."""
    config = tmp_path / f"{name}.toml"
    config.write_text(config_text)
    extra = {"CALLCENTER_LEASE_SECONDS": LEASE_SECONDS} if lease else {}
    return GunicornController({**env, **extra}, config, workers=workers)


def place(
    emulator: EmulatorThread, url: str, script: Iterable[Step], count: int
) -> list[EmulatedCall]:
    """Ring ``count`` calls whose webhooks go to ``url``."""
    emulator.emulator.webhook_url = url
    return [emulator.place_call(to_number=SUPPORT, script=tuple(script)) for _ in range(count)]


def states(store: Store) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Each leased call's owner and saved resume state."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(leases.c.call_id, leases.c.owner, leases.c.state)).all()
    return {row.call_id: (row.owner, row.state) for row in rows}


def wait_settled(store: Store, calls: Iterable[EmulatedCall], timeout: float = 30.0) -> None:
    """Wait until every call's holder saved it talking: greeted, and a reply or a tool running."""
    ids = [call.call_id for call in calls]

    def talking(state: dict[str, Any] | None) -> bool:
        return bool(state and state["attaches"] and (state["lines"] >= 3 or state["running"]))

    def settled() -> bool:
        found = states(store)
        return all(talking(found.get(call_id, ("", None))[1]) for call_id in ids)

    wait_for(settled, timeout=timeout, what="every call to be saved talking")


def owner_pid(owner: str) -> int:
    """The pid in an owner id ``host:pid:token``."""
    return int(owner.split(":")[1])


def holders(store: Store, calls: Iterable[EmulatedCall]) -> dict[int, list[EmulatedCall]]:
    """The calls by the pid of the process holding them (or the last one, once ended)."""
    by_pid: dict[int, list[EmulatedCall]] = {}
    for call in calls:
        record = store.get_call(call.call_id)
        assert record is not None
        assert record.owner is not None
        by_pid.setdefault(owner_pid(record.owner), []).append(call)
    return by_pid


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (gunicorn's workers, for its master)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(part) for part in path.read_text().split()] if path.exists() else []


def first_ready_after(node: GunicornController, old: Iterable[int]) -> float:
    """When (Unix seconds, from its log) the first worker not in ``old`` had built its app.

    A worker logs "controller ready" with its owner, ``host:pid:token``, once its app (and
    so its lease keeper) is up: from then on it can take calls over.
    """
    before = set(old)
    times = []
    for line in node.output:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines are not JSON
        if not isinstance(entry, dict) or entry.get("msg") != "controller ready":
            continue
        pid = int(str(entry["owner"]).split(":")[1])
        if pid not in before:
            times.append(datetime.fromisoformat(entry["ts"]).timestamp())
    if not times:
        raise AssertionError("no new worker said it was ready")
    return min(times)


def kill_node(node: GunicornController) -> None:
    """SIGKILL a whole node: its workers and its master, as a lost machine would."""
    for pid in children(node.process.pid):
        os.kill(pid, signal.SIGKILL)
    node.process.kill()
    node.process.wait()


@dataclass
class Reattaches:
    """When each call got its next attach, in seconds after ``since``."""

    since: float
    seconds: dict[str, float]

    @property
    def worst(self) -> float:
        return max(self.seconds.values(), default=0.0)


def stall_outside_a_write(pid: int, store_url: str, tries: int = 20) -> None:
    """SIGSTOP ``pid`` at a moment it holds no SQLite write turn.

    SQLite has one write lock: a process stopped inside a write transaction (it holds the
    writers' queue of ``store.engine`` then) holds every other writer of the node until it
    is woken, so no takeover can be written meanwhile. That is SQLite's limit, not what a
    stall test is about, so on SQLite the stop is retried until it lands between writes.
    On PostgreSQL every moment is taken.
    """
    database = sa.make_url(store_url).database
    lock_file = Path(f"{database}-writers.lock") if store_url.startswith("sqlite") else None
    for _ in range(tries):
        os.kill(pid, signal.SIGSTOP)
        if lock_file is None or _queue_free(lock_file):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)  # let it finish that write; any moment after will do
    raise AssertionError(f"worker {pid} held the write lock at each of {tries} stops")


def _queue_free(lock_file: Path, within: float = 1.0) -> bool:
    """Whether the writers' queue can be taken within ``within`` seconds (then given back):
    a stopped holder would keep it; a running one gives it up in milliseconds."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        deadline = time.monotonic() + within
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.002)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
    finally:
        os.close(fd)


def wait_reattached(
    calls: Iterable[EmulatedCall], since: float, *, attaches: int = 2, timeout: float = 30.0
) -> Reattaches:
    """Wait until every call was attached ``attaches`` times; when each one was."""
    pending = {call.call_id: call for call in calls}
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while pending:
        now = time.monotonic()
        for call_id, call in list(pending.items()):
            if call.attaches >= attaches:
                seen[call_id] = now - since
                del pending[call_id]
        if pending and now > deadline:
            raise AssertionError(f"{len(pending)} calls not reattached after {timeout}s")
        time.sleep(0.01)
    return Reattaches(since, seen)


def wait_ended(store: Store, calls: Iterable[EmulatedCall], timeout: float = 60.0) -> None:
    """Wait until every call's end is recorded."""
    ids = [call.call_id for call in calls]

    def ended() -> bool:
        return all(
            (record := store.get_call(call_id)) is not None and record.status == "ended"
            for call_id in ids
        )

    wait_for(ended, timeout=timeout, what="every call's end to be recorded")


def greetings(call: EmulatedCall) -> int:
    """How many times the controller asked for the greeting on the call."""
    return sum(
        1
        for event in call.client_events
        if event.get("type") == "response.create"
        and GREETING in str(event.get("response", {}).get("instructions", ""))
    )


def check_continued(store: Store, calls: Iterable[EmulatedCall]) -> None:
    """Each call went on as one session: greeted once, one transcript, never hung up by us."""
    for call in calls:
        assert greetings(call) == 1, call.call_id
        seqs = [line.data["seq"] for line in store.transcript(call.call_id)]
        assert seqs == list(range(1, len(seqs) + 1)), (call.call_id, seqs)
        assert len(seqs) >= 4, (call.call_id, seqs)  # a line said after the takeover
        assert not [r for r in call.rest_requests if r.verb == "hangup"], call.call_id
        record = store.get_call(call.call_id)
        assert record is not None
        assert record.outcome in ("hung_up_by_caller", "completed"), (call.call_id, record.outcome)


def check_interrupted(call: EmulatedCall) -> None:
    """The tool that was running when its holder died was answered as interrupted."""
    outputs = [
        e["item"]["output"]
        for e in call.client_events
        if e.get("type") == "conversation.item.create"
        and e["item"].get("type") == "function_call_output"
    ]
    assert any("the tool was interrupted" in output for output in outputs), outputs


def check_no_slot_held(store: Store) -> None:
    """Once every call ended, no lease is left and the cap counts nothing."""
    assert store.count_active_calls(datetime.now(UTC)) == 0
    assert states(store) == {}
