"""Runtime seams: _hold when the call's run is over before its done-callback is added, and
a drain that begins while another one is handing the calls over."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from openai.resources.realtime.realtime import AsyncRealtimeConnectionManager
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides

from callcenter.call.escalation import TransferTarget
from callcenter.call.runtime import Runtime, RuntimeTimeouts
from callcenter.call.session import LiveCall
from callcenter.config.loader import example_config_path, load_config
from callcenter.control import CallControl, ControlPolicy
from callcenter.emulator import EmulatorThread
from callcenter.store import Store, default_sqlite_url
from tests.harness import API_KEY

DEADLINE = 10.0  # seconds; the whole call takes well under one


class OverBeforeHeld(Runtime):
    """A runtime whose every call's run is over before ``_hold`` adds its done-callback."""

    over_first: list[bool]  # per call: whether its run was over when _submit returned

    def _submit(
        self, run: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
    ) -> concurrent.futures.Future[None]:
        future = super()._submit(run, loop)
        concurrent.futures.wait([future], timeout=DEADLINE)
        self.over_first.append(future.done())
        return future


class HeldHandOver(Runtime):
    """A runtime whose hand-over waits until the test lets it go on, and counts its starts."""

    began: threading.Event
    go_on: threading.Event
    hand_overs: int
    order: list[str]

    async def _hand_over_all(self) -> None:
        self.hand_overs += 1
        self.began.set()
        await asyncio.to_thread(self.go_on.wait, DEADLINE)
        await super()._hand_over_all()
        self.order.append("handed over")


_R = TypeVar("_R", bound=Runtime)


@contextmanager
def build(kind: type[_R], tmp_path: Path, emulator: EmulatorThread) -> Iterator[_R]:
    """A runtime of ``kind`` on the emulator and a SQLite store; the test shuts it down."""
    store = Store.open(default_sqlite_url(tmp_path / "data"))
    store.migrate()
    client = openai.OpenAI(api_key=API_KEY, base_url=emulator.base_url, max_retries=0)
    async_client = openai.AsyncOpenAI(api_key=API_KEY, base_url=emulator.base_url)

    def connect(
        call_id: str, on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None]
    ) -> AsyncRealtimeConnectionManager:
        return async_client.realtime.connect(call_id=call_id, on_reconnecting=on_reconnecting)

    held = kind(
        store=store,
        control=CallControl(client, ControlPolicy(deadline=DEADLINE)),
        connect=connect,
        clock=lambda: datetime.now(UTC),
        config=load_config(example_config_path()),
        timeouts=RuntimeTimeouts(shutdown=DEADLINE),
        spill_dir=tmp_path / "spill",
    )
    yield held
    store.close()


@pytest.fixture
def runtime(tmp_path: Path, emulator: EmulatorThread) -> Iterator[OverBeforeHeld]:
    """An ``OverBeforeHeld`` runtime."""
    with build(OverBeforeHeld, tmp_path, emulator) as held:
        held.over_first = []
        yield held


@pytest.fixture
def held_hand_over(tmp_path: Path, emulator: EmulatorThread) -> Iterator[HeldHandOver]:
    """A ``HeldHandOver`` runtime."""
    with build(HeldHandOver, tmp_path, emulator) as held:
        held.began, held.go_on = threading.Event(), threading.Event()
        held.hand_overs, held.order = 0, []
        yield held


def test_a_call_over_before_it_is_held_is_forgotten_without_a_deadlock(
    runtime: OverBeforeHeld,
) -> None:
    """start() returns, and the call is no longer held, when its run ended inside _hold."""
    # The emulator knows no such call: the REFER gets a 404 and the call is over at once.
    call = LiveCall("rtc_gone", None, transfer_to=(TransferTarget("sip:desk@example.com"),))
    started: list[bool] = []
    starter = threading.Thread(target=lambda: started.append(runtime.start(call)), daemon=True)
    starter.start()
    starter.join(timeout=DEADLINE)
    assert not starter.is_alive(), "Runtime.start deadlocked on its own lock"
    assert started == [True]
    assert runtime.over_first == [True]
    assert runtime.active_calls() == []
    runtime.shutdown()  # not after a deadlock: its lock stays taken


def test_a_shutdown_during_a_drain_waits_for_that_drains_hand_over(
    held_hand_over: HeldHandOver,
) -> None:
    """gunicorn's SIGTERM drains while its exit hook shuts down: one hand-over, finished first.

    A second hand-over would find the calls already let go and return at once, and the
    shutdown would then cancel the first before it released the leases.
    """
    runtime = held_hand_over
    runtime.open()
    drain = threading.Thread(target=runtime.drain, daemon=True)
    drain.start()
    assert runtime.began.wait(DEADLINE)

    def shut_down() -> None:
        runtime.shutdown()
        runtime.order.append("shut down")

    shutdown = threading.Thread(target=shut_down, daemon=True)
    shutdown.start()
    runtime.go_on.set()
    shutdown.join(timeout=DEADLINE)
    drain.join(timeout=DEADLINE)
    assert not shutdown.is_alive()
    assert not drain.is_alive()
    assert runtime.hand_overs == 1
    assert runtime.order == ["handed over", "shut down"]
