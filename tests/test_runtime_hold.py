"""Runtime._hold when the call's run is over before its done-callback is added."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


@pytest.fixture
def runtime(tmp_path: Path, emulator: EmulatorThread) -> Iterator[OverBeforeHeld]:
    """An ``OverBeforeHeld`` runtime on the emulator and a SQLite store; the test shuts it down."""
    store = Store.open(default_sqlite_url(tmp_path / "data"))
    store.migrate()
    client = openai.OpenAI(api_key=API_KEY, base_url=emulator.base_url, max_retries=0)
    async_client = openai.AsyncOpenAI(api_key=API_KEY, base_url=emulator.base_url)

    def connect(
        call_id: str, on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None]
    ) -> AsyncRealtimeConnectionManager:
        return async_client.realtime.connect(call_id=call_id, on_reconnecting=on_reconnecting)

    held = OverBeforeHeld(
        store=store,
        control=CallControl(client, ControlPolicy(deadline=DEADLINE)),
        connect=connect,
        clock=lambda: datetime.now(UTC),
        config=load_config(example_config_path()),
        timeouts=RuntimeTimeouts(shutdown=DEADLINE),
        spill_dir=tmp_path / "spill",
    )
    held.over_first = []
    yield held
    store.close()


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
