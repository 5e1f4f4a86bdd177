"""The emulator outside asyncio: in a thread for sync code, and as a process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI

from callcenter.emulator import CallState, EmulatorThread

from .helpers import API_KEY


@pytest.fixture
def emulator_thread() -> Iterator[EmulatorThread]:
    """An emulator on its own loop thread, with no webhook URL."""
    with EmulatorThread(api_key=API_KEY, validate_events=True) as running:
        yield running
    assert running.emulator.event_problems == []


def test_the_sync_sdk_drives_a_threaded_emulator(emulator_thread: EmulatorThread) -> None:
    """place_call from this thread, then accept and hang up with the sync SDK."""
    call = emulator_thread.place_call(from_number="+14155550100")
    client = OpenAI(api_key=API_KEY, base_url=emulator_thread.base_url, max_retries=0)
    client.realtime.calls.accept(call.call_id, type="realtime")
    client.realtime.calls.hangup(call.call_id)
    assert emulator_thread.wait_for(lambda: call.state is CallState.ENDED)
    with pytest.raises(openai.NotFoundError):
        client.realtime.calls.hangup(call.call_id)


def test_the_sync_sdk_attaches_a_sideband(emulator_thread: EmulatorThread) -> None:
    """The sync SDK's realtime.connect reaches the threaded emulator's sideband."""
    call = emulator_thread.place_call()
    client = OpenAI(api_key=API_KEY, base_url=emulator_thread.base_url, max_retries=0)
    client.realtime.calls.accept(call.call_id, type="realtime")
    with client.realtime.connect(call_id=call.call_id) as connection:
        assert connection.recv().type == "session.created"
        emulator_thread.caller_hangs_up(call.call_id)
    assert call.ended_by == "caller"


def test_wait_for_times_out_with_a_clear_error(emulator_thread: EmulatorThread) -> None:
    """wait_for raises TimeoutError when the condition never holds."""
    with pytest.raises(TimeoutError, match="within 0.05s"):
        emulator_thread.wait_for(lambda: False, timeout=0.05)


def test_run_emulator_serves_until_sigterm() -> None:
    """run_emulator serves the control API, then stops cleanly on SIGTERM."""
    code = (
        "from callcenter.emulator import run_emulator\n"
        "run_emulator(port=0, on_ready=lambda e: print(e.url, flush=True))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        with urllib.request.urlopen(url + "/_emulator/calls", timeout=5) as answer:
            assert json.load(answer) == {"calls": []}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
