"""Confirmed transfers over real WebSockets: the call must leave us, else the next target."""

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
    Say,
    Step,
    Wait,
    WaitFor,
)
from tests.harness import wait_for
from tests.sideband_support import (
    GREETING,
    SUPPORT,
    CallCenter,
    config_with,
    events,
    finished,
    kinds,
    says,
)
from tests.test_metrics import counted

DESK = "sip:desk@pbx.example.com"
BACKUP = "sip:backup@pbx.example.com"
# Short answer timeouts: a test waits for a timer of a fraction of a second, not 30 s.
CONFIG = config_with(
    ("ticket_header = true\n", "answer_timeout = 0.3\n"),
    ('uri = "sip:backup@pbx.example.com"\n', f'uri = "{BACKUP}"\nanswer_timeout = 0.3\n'),
)
GREETED: tuple[Step, ...] = (ModelSay(GREETING), WaitFor("output_audio_buffer.stopped"))
ASKS = (*GREETED, Say("A human please"))
HOLD = Wait(30)  # the caller stays on the line until the call leaves or the test ends


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the transfer test config."""
    started = CallCenter(tmp_path, emulator, controller_env)
    yield started
    started.stop()


def refers(call_id: str, emulator: EmulatorThread) -> list[tuple[str, int]]:
    """The target and status of each REFER the controller sent."""
    requests = emulator.calls[call_id].rest_requests
    return [(r.body["target_uri"], r.status) for r in requests if r.verb == "refer"]


def test_a_transfer_is_confirmed_when_the_sideband_closes(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The REFER's 200 leaves the call active; it is transferred once the call leaves us."""
    controller = center.start(CONFIG.replace("answer_timeout = 0.3\n", "answer_timeout = 20\n"))
    emulator.faults.script_transfer(DESK, "answered", after=1.0)
    call = emulator.place_call(to_number=SUPPORT, script=[*ASKS, HOLD])
    wait_for(lambda: refers(call.call_id, emulator), what="the REFER")
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert record.status == "active"  # relayed, not yet transferred
    assert call.state is CallState.ACCEPTED
    record = finished(controller, call.call_id)
    assert record.outcome == "transferred"
    assert call.state is CallState.REFERRED
    (transferred,) = events(controller, call.call_id, "transferred")
    assert (transferred["target"], transferred["result"]) == ("desk", "transferred")
    assert transferred["seconds"] >= 1.0  # counted until the call left, not until the 200


def test_an_unanswered_transfer_goes_to_the_next_target_after_its_answer_timeout(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The desk does not answer: after its answer_timeout the backup is tried and takes it."""
    controller = center.start(CONFIG)
    attempts = "callcenter_transfer_attempts_total"
    before = {r: counted(controller.url, attempts, result=r) for r in ("unanswered", "transferred")}
    emulator.faults.script_transfer(DESK, "no_answer")
    call = emulator.place_call(to_number=SUPPORT, script=[*ASKS, HOLD])
    record = finished(controller, call.call_id)
    assert record.outcome == "transferred"
    for result in ("unanswered", "transferred"):
        assert counted(controller.url, attempts, result=result) == before[result] + 1
    assert [target.split("?")[0] for target, _ in refers(call.call_id, emulator)] == [DESK, BACKUP]
    assert [a["result"] for a in call.refer_attempts] == ["no_answer", "answered"]
    (unanswered,) = events(controller, call.call_id, "transfer_unanswered")
    assert (unanswered["target"], unanswered["answer_timeout"]) == ("desk", 0.3)
    assert call.refer_target == BACKUP


def test_a_refused_refer_goes_to_the_next_target_at_once(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A 4xx from /refer: no retry, no answer timeout; the backup's REFER follows."""
    controller = center.start(CONFIG.replace("answer_timeout = 0.3\n", "answer_timeout = 20\n"))
    emulator.faults.script_transfer(DESK, "refused", status=403)
    call = emulator.place_call(to_number=SUPPORT, script=[*ASKS, HOLD])
    record = finished(controller, call.call_id)
    assert record.outcome == "transferred"
    assert [(t.split("?")[0], s) for t, s in refers(call.call_id, emulator)] == [
        (DESK, 403),
        (BACKUP, 200),
    ]
    (refused,) = events(controller, call.call_id, "refer_failed")
    assert (refused["target"], refused["status"], refused["result"]) == ("desk", 403, "refused")
    assert "transfer_unanswered" not in kinds(controller, call.call_id)


def test_a_5xx_refer_is_retried_once_then_the_next_target_is_tried(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Two 503s on the desk's REFER: one quick retry, then the backup."""
    controller = center.start(CONFIG)
    emulator.faults.fail_rest("refer", status=503, times=2)
    call = emulator.place_call(to_number=SUPPORT, script=[*ASKS, HOLD])
    record = finished(controller, call.call_id)
    assert record.outcome == "transferred"
    assert [(t.split("?")[0], s) for t, s in refers(call.call_id, emulator)] == [
        (DESK, 503),
        (DESK, 503),
        (BACKUP, 200),
    ]
    assert events(controller, call.call_id, "refer_failed")[0]["status"] == 503


def test_when_every_target_fails_the_agent_resumes(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """No answer, then refused: the caller hears so, and the agent answers the caller again."""
    controller = center.start(CONFIG)
    emulator.faults.script_transfer(DESK, "no_answer")
    emulator.faults.script_transfer(BACKUP, "refused", status=480)
    script: list[Step] = [
        *ASKS,
        WaitFor("response.create"),  # the summary
        WaitFor("response.create"),  # the handoff line
        WaitFor("response.create"),  # "I couldn't reach a colleague"
        Dtmf("4"),  # told to the model: the agent answers again
        WaitFor("response.create"),
        HangUp(),
    ]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    record = finished(controller, call.call_id)
    assert call.script_errors == []
    assert record.outcome != "transferred"
    (failed,) = events(controller, call.call_id, "transfer_failed")
    assert failed["then"] == "resume"
    assert failed["tried"] == [
        {"target": "desk", "result": "unanswered"},
        {"target": "backup", "result": "refused"},
    ]
    assert any(says(e, "still here to help") for e in call.client_events)
    after = kinds(controller, call.call_id)
    assert after.index("dtmf") > after.index("transfer_failed")
    assert call.ended_by == "caller"


def test_when_every_target_fails_a_hangup_route_hangs_up(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """on_transfer_failed = "hangup": told, hung up; the outcome is transfer_failed."""
    config = CONFIG.replace("tools = ", 'on_transfer_failed = "hangup"\ntools = ', 1)
    controller = center.start(config)
    emulator.faults.script_transfer(None, "busy", times=2)
    call = emulator.place_call(to_number=SUPPORT, script=[*ASKS, HOLD])
    record = finished(controller, call.call_id)
    assert record.outcome == "transfer_failed"
    assert [r.verb for r in call.rest_requests] == ["accept", "refer", "refer", "hangup"]
    assert any(says(e, "couldn't reach a colleague") for e in call.client_events)
    assert (call.state, call.ended_by) == (CallState.ENDED, "controller")
    assert len(events(controller, call.call_id, "transfer_unanswered")) == 2
