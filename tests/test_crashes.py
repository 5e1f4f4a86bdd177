"""Failures that must take nothing down: a call's session, the command poller, a reader thread.

Each failure is real: a malformed server event sent by the emulator on the sideband, command
rows the poller cannot use written into the store, a handler that raises on every line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, EmulatorThread, RedeliveryPolicy, Wait
from callcenter.store.operators import OperatorStore
from callcenter.store.schema import commands
from callcenter.web.serve_process import ServeProcess
from tests.harness import API_KEY, WEBHOOK_KEEPALIVE, WEBHOOK_SECRET, wait_for
from tests.operator_support import Api, live_call, operator_center
from tests.sideband_support import CallCenter, finished

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    """The emulator without its event checks: a test here sends a malformed event on purpose."""
    thread = EmulatorThread(
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        redelivery=RedeliveryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, timeout=5.0),
        webhook_keepalive=WEBHOOK_KEEPALIVE,
    )
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the sideband test config, with the test operators' tokens."""
    started = operator_center(tmp_path, emulator, controller_env)
    yield started
    started.stop()


def test_a_session_crash_hangs_the_call_up_and_records_why(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A server event the session cannot take: the call is hung up, failed with the error kind."""
    controller = center.start()
    call = live_call(emulator, Api(controller.url), [Wait(30)])
    conversation = emulator.emulator.conversations[call.call_id]
    emulator.call(lambda: conversation.channel.emit({"type": "response.done", "event_id": "ev_x"}))
    wait_for(lambda: call.state is CallState.ENDED, what="the hang-up")
    assert call.ended_by == "controller"
    assert [r.status for r in call.rest_requests if r.verb == "hangup"] == [200]
    record = finished(controller, call.call_id)
    assert (record.status, record.outcome, record.error) == (
        "failed",
        "failed",
        "session: AttributeError",
    )


def test_the_command_poller_refuses_a_command_of_the_wrong_shape_and_goes_on(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A queued command whose payload is not an object is marked invalid; the next one runs."""
    controller = center.start()
    call = live_call(emulator, Api(controller.url), [Wait(30)])
    store = controller.services.store
    with store.engine.begin() as conn:
        row = {"kind": "transfer", "payload": ["desk"], "operator": "ada", "created_at": NOW}
        poison = conn.execute(insert(commands).values(call_id=call.call_id, **row))
    [poison_id] = poison.inserted_primary_key or [None]
    operators = OperatorStore(store)
    good = operators.add_command(call.call_id, "hangup", {}, operator="ada", at=NOW)
    wait_for(lambda: call.state is CallState.ENDED, what="the hang-up command to run")
    assert isinstance(poison_id, int)
    assert operators.command(poison_id).result == "invalid"  # type: ignore[union-attr]
    wait_for(
        lambda: operators.command(good).result == "delivered",  # type: ignore[union-attr]
        what="the hang-up command's result",
    )


def test_the_command_poller_survives_a_failure_that_is_not_the_store_s(
    emulator: EmulatorThread, center: CallCenter, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A row the store cannot read back (a corrupt timestamp) fails polls; the poller goes on."""
    if not store_url.startswith("sqlite"):
        pytest.skip("only SQLite lets a timestamp column hold a string that is no time")
    controller = center.start()
    call = live_call(emulator, Api(controller.url), [Wait(30)])
    store = controller.services.store
    operators = OperatorStore(store)
    with caplog.at_level(logging.ERROR, logger="callcenter.operators.commands"):
        with store.engine.begin() as conn:  # queued and corrupted in one transaction
            command_id = conn.execute(
                insert(commands).values(
                    call_id=call.call_id, kind="hangup", payload={}, operator="ada", created_at=NOW
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.exec_driver_sql(
                "UPDATE commands SET created_at = 'not a time' WHERE id = ?", (command_id,)
            )

        def failed_polls() -> int:
            return sum(r.getMessage() == "operator command poll failed" for r in caplog.records)

        wait_for(lambda: failed_polls() >= 3, what="several failed polls")
    with store.engine.begin() as conn:  # repaired: the very next poll executes it
        conn.execute(update(commands).where(commands.c.id == command_id).values(created_at=NOW))
    wait_for(lambda: call.state is CallState.ENDED, what="the hang-up command to run")
    wait_for(  # the result is written once the hang-up has gone out, after the call ended
        lambda: operators.command(command_id).result == "delivered",  # type: ignore[union-attr]
        what="the hang-up command's result",
    )
    failure = next(r for r in caplog.records if r.getMessage() == "operator command poll failed")
    assert failure.exc_info is not None


def test_the_serve_output_reader_survives_a_handler_that_raises(
    controller_env: dict[str, str],
) -> None:
    """A line handler raising on every line: the child's output is still read to the end."""
    seen: list[str] = []

    def broken(line: str) -> None:
        seen.append(line)
        raise RuntimeError("handler bug")

    process = ServeProcess(controller_env, example_config_path(), workers=1, on_line=broken)
    try:
        process.wait_ready()
    finally:
        process.stop()
    assert len(seen) > 1
    assert seen == process.output
