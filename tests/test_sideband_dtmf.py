"""Keypad presses over real WebSockets: the route's DTMF map, and keys told to the model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.emulator import (
    CallState,
    Dtmf,
    EmulatorThread,
    HangUp,
    ModelSay,
    Step,
    Wait,
    WaitFor,
)
from tests.sideband_support import GREETING, SUPPORT, CallCenter, events, finished, says, sent

GREETED: tuple[Step, ...] = (ModelSay(GREETING), WaitFor("output_audio_buffer.stopped"))


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the sideband test config."""
    started = CallCenter(tmp_path, emulator, controller_env)
    yield started
    started.stop()


def test_a_refer_key_transfers_to_its_target(emulator: EmulatorThread, center: CallCenter) -> None:
    """ "5" = "refer:sales": a handoff to sales (a tel: target, so no ticket header)."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, Dtmf("5"), Wait(30)])
    record = finished(controller, call.call_id)
    assert (record.outcome, record.escalation_trigger) == ("transferred", "dtmf")
    assert call.refer_target == "tel:+14155550199"
    assert events(controller, call.call_id, "dtmf") == [{"key": "5"}]
    assert events(controller, call.call_id, "escalation")[0]["target"] == "sales"


def test_an_end_key_says_goodbye_and_hangs_up(emulator: EmulatorThread, center: CallCenter) -> None:
    """ "9" = "end": the goodbye line, then our hang-up."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, Dtmf("9"), Wait(30)])
    record = finished(controller, call.call_id)
    assert record.outcome == "ended_by_agent"
    assert any(says(e, "Goodbye") for e in call.client_events)
    assert (call.state, call.ended_by) == (CallState.ENDED, "controller")


def test_other_keys_are_told_to_the_model(emulator: EmulatorThread, center: CallCenter) -> None:
    """A key without an action becomes a user message, then a response.create."""
    controller = center.start()
    script = [*GREETED, Dtmf("4"), WaitFor("response.done"), HangUp()]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    notes = [e["item"] for e in sent(call, "conversation.item.create")]
    assert notes == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "The caller pressed 4."}],
        }
    ]
    kinds = [e["type"] for e in call.client_events]
    assert kinds[kinds.index("conversation.item.create") + 1] == "response.create"
    assert events(controller, call.call_id, "dtmf") == [{"key": "4"}]
