"""Operator commands reach the worker holding the call, whichever worker got the request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, EmulatorThread, Wait
from callcenter.operators.commands import CommandPoller
from callcenter.store import Store, wakeups
from callcenter.store.operators import OperatorStore
from tests.harness import GunicornController, wait_for
from tests.operator_support import TOKENS, Api, live_call, operator_center
from tests.sideband_support import SUPPORT, CallCenter, finished

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

SUPPORT_DESK = "tel:+14155550111"


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the sideband test config, with the test operators' tokens."""
    started = operator_center(tmp_path, emulator, controller_env)
    yield started
    started.stop()


@pytest.fixture
def served(
    emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[GunicornController]:
    """`callcenter serve` with two workers and operator tokens, wired to the emulator."""
    env = {**controller_env, "CALLCENTER_OPERATOR_TOKENS": TOKENS}
    controller = GunicornController(env, example_config_path(), workers=2)
    emulator.emulator.webhook_url = controller.webhook_url
    yield controller
    controller.stop()


def test_a_command_sent_to_another_controller_goes_through_the_store(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Two controllers on one store: the one without the call queues, the holder executes."""
    other = center.start()
    holder = center.start()  # the emulator's webhooks go to the last one started
    call = live_call(emulator, Api(holder.url))
    response = Api(other.url).post(f"/calls/{call.call_id}/transfer", {"target": "sales"})
    assert response.status_code == 200, response.text
    record = finished(holder, call.call_id)
    assert record.escalation_trigger == "operator"
    assert call.refer_target == "tel:+14155550199"
    (entry,) = [e for e in Api(other.url).get("/audit").json()["entries"] if e["action"] != "login"]
    assert entry["detail"]["command_id"] is not None


def test_transfers_sent_to_any_gunicorn_worker_are_executed(
    served: GunicornController, emulator: EmulatorThread
) -> None:
    """Two workers: a transfer of each of four calls is executed, whoever received it."""
    api = Api(served.url)
    calls = [live_call(emulator, api, [Wait(30)]) for _ in range(4)]
    for call in calls:
        response = api.post(f"/calls/{call.call_id}/transfer", {"target": "support-desk"})
        assert response.status_code == 200, response.text
    wait_for(lambda: all(c.state is CallState.REFERRED for c in calls), what="every REFER")
    assert {c.refer_target for c in calls} == {SUPPORT_DESK}


def test_a_command_queued_by_another_node_is_executed(
    served: GunicornController, emulator: EmulatorThread, store_url: str
) -> None:
    """A command row written straight into the store is claimed by the holding worker."""
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(30)])
    wait_for(lambda: call.attaches == 1, what="the sideband")
    with Store.open(store_url) as store:
        operators = OperatorStore(store)
        command_id = operators.add_command(
            call.call_id, "hangup", {}, operator="ada", at=datetime.now(UTC)
        )
        wait_for(lambda: call.state is CallState.ENDED, what="the hang-up")
        wait_for(lambda: (c := operators.command(command_id)) is not None and c.result)
        done = operators.command(command_id)
    assert done is not None
    assert (done.result, done.claimed_by is not None) == ("delivered", True)


class HeldCalls:
    """The two things a command poller asks of its runtime, for one held call."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.received: list[object] = []

    def active_calls(self) -> list[str]:
        return [self.call_id]

    def command(self, call_id: str, command: object) -> bool:
        self.received.append(command)
        return call_id == self.call_id


def test_a_queued_command_wakes_the_poller_on_postgresql(store_url: str) -> None:
    """On PostgreSQL the NOTIFY of a queued command wakes a poller whose fallback is an hour."""
    with Store.open(store_url) as store:
        if not wakeups.supported(store.engine):
            pytest.skip("notifications are PostgreSQL's; SQLite polls")
        store.migrate()
        operators = OperatorStore(store)
        held = HeldCalls("rtc_held")
        poller = CommandPoller(
            held,  # type: ignore[arg-type]
            operators,
            owner="host-a:1:aa",
            clock=lambda: datetime.now(UTC),
            notified_interval=3600,
        )
        poller.start()
        try:
            wait_for(lambda: poller.listening, what="the poller to listen")
            command_id = operators.add_command(
                "rtc_held", "hangup", {}, operator="ada", at=datetime.now(UTC)
            )
            wait_for(lambda: held.received, what="the command to be executed")
        finally:
            poller.stop()
        done = operators.command(command_id)
    assert done is not None
    assert done.result == "delivered"


class CallsHeld:
    """A runtime whose held calls the test changes."""

    def __init__(self, *call_ids: str) -> None:
        self.held = list(call_ids)
        self.received: list[str] = []

    def active_calls(self) -> list[str]:
        return list(self.held)

    def command(self, call_id: str, command: object) -> bool:
        self.received.append(call_id)
        return call_id in self.held


@pytest.fixture
def sqlite_operators(tmp_path: Path) -> Iterator[OperatorStore]:
    """The operator tables of a migrated SQLite store (no notifications: the poller polls)."""
    with Store.open(f"sqlite:///{tmp_path / 'callcenter.db'}") as store:
        store.migrate()
        yield OperatorStore(store)


def sqlite_poller(runtime: CallsHeld, operators: OperatorStore) -> CommandPoller:
    return CommandPoller(
        runtime,  # type: ignore[arg-type]
        operators,
        owner="host-a:1:aa",
        clock=lambda: datetime.now(UTC),
    )


def test_a_poll_with_nothing_new_skips_the_claim(sqlite_operators: OperatorStore) -> None:
    """No command queued and the same calls held: the second poll runs no query over them."""
    claims: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "commands.call_id IN" in statement:
            claims.append(statement)

    event.listen(sqlite_operators.engine, "before_cursor_execute", seen)
    poller = sqlite_poller(CallsHeld("rtc_a"), sqlite_operators)
    assert poller.poll_once() == 0
    assert len(claims) == 1
    assert poller.poll_once() == 0
    event.remove(sqlite_operators.engine, "before_cursor_execute", seen)
    assert len(claims) == 1


def test_commands_queued_or_for_calls_taken_on_after_a_poll_are_claimed(
    sqlite_operators: OperatorStore,
) -> None:
    """After a poll that found nothing, a new command, or a call held since, is claimed."""
    runtime = CallsHeld("rtc_a")
    poller = sqlite_poller(runtime, sqlite_operators)
    now = datetime.now(UTC)
    sqlite_operators.add_command("rtc_b", "hangup", {}, operator="ada", at=now)
    assert poller.poll_once() == 0  # rtc_b is not held here
    runtime.held.append("rtc_b")  # taken on (a takeover, or its session came up)
    assert poller.poll_once() == 1
    assert poller.poll_once() == 0
    sqlite_operators.add_command("rtc_a", "hangup", {}, operator="ada", at=now)
    assert poller.poll_once() == 1
    assert runtime.received == ["rtc_b", "rtc_a"]
