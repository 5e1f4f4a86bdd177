"""Escalation over real WebSockets: every trigger, the warm handoff, fallbacks, failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.call.actions import OperatorTransfer
from callcenter.call.escalation import ticket_for
from callcenter.emulator import (
    CallState,
    Dtmf,
    EmulatorThread,
    ModelCallTool,
    ModelSay,
    Pacing,
    Say,
    ServerError,
    Silence,
    Step,
    Wait,
    WaitFor,
)
from tests.harness import wait_for
from tests.sideband_support import (
    GREETING,
    HANDOFF,
    SUPPORT,
    CallCenter,
    config_with,
    events,
    finished,
    says,
    sent,
    served,
)

GREETED: tuple[Step, ...] = (ModelSay(GREETING), WaitFor("output_audio_buffer.stopped"))
HOLD = Wait(30)  # the caller stays on the line until the call is transferred
DESK = "sip:desk@pbx.example.com"


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the sideband test config."""
    started = CallCenter(tmp_path, emulator, controller_env)
    yield started
    started.stop()


def transferred_by(
    emulator: EmulatorThread, center: CallCenter, script: list[Step], trigger: str
) -> None:
    """Place a call; check it was transferred to the desk because of ``trigger``."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=script)
    record = finished(controller, call.call_id)
    assert (record.outcome, record.escalation_trigger) == ("transferred", trigger)
    assert call.refer_target == f"{DESK}?X-Callcenter-Ticket={ticket_for(call.call_id)}"
    (escalation,) = events(controller, call.call_id, "escalation")
    assert escalation["trigger"] == trigger


def test_transfer_to_human_hands_off_with_a_summary_and_a_ticket(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The model's transfer: summary out of band, handoff line heard, REFER with the ticket."""
    controller = center.start()
    script: list[Step] = [
        *GREETED,
        Say("I want my money back for order A-1042."),
        ModelCallTool("transfer_to_human", {"reason": "refund request"}),
        ModelSay("Caller wants a refund for order A-1042.", out_of_band=True),
        HOLD,
    ]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    record = finished(controller, call.call_id)
    ticket = ticket_for(call.call_id)
    assert (record.outcome, record.escalation_trigger, record.ticket) == (
        "transferred",
        "tool",
        ticket,
    )
    assert record.summary == "Caller wants a refund for order A-1042."
    assert (record.status, record.target) == ("referred", f"{DESK}?X-Callcenter-Ticket={ticket}")
    assert call.state is CallState.REFERRED
    summary = next(e for e in sent(call, "response.create") if "conversation" in e["response"])
    assert summary["response"]["conversation"] == "none"
    assert summary["response"]["output_modalities"] == ["text"]
    assert any(says(e, HANDOFF) for e in call.client_events)
    (escalation,) = events(controller, call.call_id, "escalation")
    assert (escalation["reason"], escalation["target"]) == ("refund request", "desk")


def test_the_handoff_line_is_heard_before_the_refer(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The REFER waits until the handoff line has played (a REFER would cut its playback)."""
    controller = center.start()
    emulator.emulator.pacing = Pacing(playback_seconds=0.3)
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, Say("Get me a human."), HOLD])
    finished(controller, call.call_id)
    line = next(e for e in sent(call, "response.create") if says(e, HANDOFF))
    key = line["response"]["metadata"]["callcenter"]
    (line_id,) = [
        e["response"]["id"]
        for e in served(call, "response.created")
        if (e["response"]["metadata"] or {}).get("callcenter") == key
    ]
    assert any(e["response_id"] == line_id for e in served(call, "output_audio_buffer.stopped"))
    assert call.state is CallState.REFERRED


def test_the_caller_asking_for_a_person_escalates(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A route phrase in the caller's words (whole words, any case) escalates."""
    script: list[Step] = [*GREETED, Say("Can I talk to a Real Person, please?"), HOLD]
    transferred_by(emulator, center, script, "phrase")


def test_the_escalation_key_escalates(emulator: EmulatorThread, center: CallCenter) -> None:
    """Pressing the route's escalation key (0) escalates."""
    transferred_by(emulator, center, [*GREETED, Dtmf("0"), HOLD], "dtmf")


def test_failed_tools_in_a_row_escalate(emulator: EmulatorThread, center: CallCenter) -> None:
    """Two failed tool calls in a row escalate."""
    script: list[Step] = [
        *GREETED,
        Say("Where is my order?"),
        ModelCallTool("flaky_lookup", {"order_id": "A-1"}),
        WaitFor("function_call_output"),
        ModelCallTool("flaky_lookup", {"order_id": "A-1"}),
        HOLD,
    ]
    transferred_by(emulator, center, script, "tool_failures")


def test_silences_in_a_row_escalate(emulator: EmulatorThread, center: CallCenter) -> None:
    """Two idle timeouts in a row escalate."""
    transferred_by(emulator, center, [*GREETED, Silence(), Silence(), HOLD], "silence")


def test_error_events_escalate(emulator: EmulatorThread, center: CallCenter) -> None:
    """Two error events from the server escalate; each is recorded."""
    transferred_by(emulator, center, [*GREETED, ServerError(), ServerError(), HOLD], "errors")


def test_the_maximum_call_length_escalates(emulator: EmulatorThread, center: CallCenter) -> None:
    """A call reaching max_minutes escalates."""
    controller = center.start(
        config_with(("max_errors = 2", "max_errors = 2, max_minutes = 0.005"))
    )
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, HOLD])
    record = finished(controller, call.call_id)
    assert (record.outcome, record.escalation_trigger) == ("transferred", "max_length")


def test_an_operator_command_transfers_the_call(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Runtime.command with an operator's transfer escalates to the target they named."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, HOLD])
    runtime = controller.services.runtime
    wait_for(lambda: call.attaches == 1, what="the sideband")
    assert runtime.command(call.call_id, OperatorTransfer("sales", "ada"))
    record = finished(controller, call.call_id)
    assert (record.outcome, record.escalation_trigger) == ("transferred", "operator")
    assert call.refer_target == "tel:+14155550199"
    assert not runtime.command(call.call_id, OperatorTransfer("sales", "ada"))


def test_a_refused_refer_falls_back(emulator: EmulatorThread, center: CallCenter) -> None:
    """The desk refusing the REFER: the desk's fallback takes the call, with the ticket."""
    controller = center.start()
    emulator.faults.fail_rest("refer", status=400)
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, Say("A human please"), HOLD])
    record = finished(controller, call.call_id)
    assert record.outcome == "transferred"
    assert call.refer_target == "sip:backup@pbx.example.com"
    assert events(controller, call.call_id, "refer_failed")[0]["status"] == 400


def test_every_target_failing_tells_the_caller_and_hangs_up(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Desk and fallback refuse, on_transfer_failed = "hangup": told why, then hung up."""
    controller = center.start(config_with(("tools = ", 'on_transfer_failed = "hangup"\ntools = ')))
    emulator.faults.fail_rest("refer", status=400, times=2)
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, Say("A human please"), HOLD])
    record = finished(controller, call.call_id)
    assert record.outcome == "transfer_failed"
    assert [r.verb for r in call.rest_requests] == ["accept", "refer", "refer", "hangup"]
    assert any(says(e, "couldn't reach a colleague") for e in call.client_events)
    assert (call.state, call.ended_by) == (CallState.ENDED, "controller")
    assert len(events(controller, call.call_id, "transfer_failed")) == 1
