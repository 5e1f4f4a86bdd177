"""Held calls end to end over real WebSockets: transcript, usage, outcomes, reattach, MCP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.call.runtime import RuntimeTimeouts
from callcenter.emulator import (
    CallState,
    DropSocket,
    EmulatorThread,
    HangUp,
    ModelCallMcp,
    ModelCallTool,
    ModelSay,
    RateLimits,
    Say,
    Step,
    Wait,
    WaitFor,
)
from tests import sideband_tools
from tests.harness import wait_for
from tests.sideband_support import (
    GREETING,
    SUPPORT,
    CallCenter,
    events,
    finished,
    kinds,
    outputs,
    sent,
    served,
)

GREETED: tuple[Step, ...] = (ModelSay(GREETING), WaitFor("output_audio_buffer.stopped"))
ORDER_QUESTION: tuple[Step, ...] = (
    Say("Where is my order A-1042?"),
    ModelCallTool("lookup_order", {"order_id": "A-1042"}),
    WaitFor("function_call_output"),
    ModelSay("It shipped yesterday."),
    WaitFor("output_audio_buffer.stopped"),
)


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the sideband test config."""
    started = CallCenter(tmp_path, emulator, controller_env)
    yield started
    started.stop()


def test_a_served_call_ends_completed_with_its_transcript_and_usage(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Greeting, a question answered with a tool, the caller hangs up: all of it is stored."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, *ORDER_QUESTION, HangUp()])
    record = finished(controller, call.call_id)
    assert record.outcome == "completed"
    lines = controller.services.store.transcript(call.call_id)
    assert [(e.data["speaker"], e.data["text"]) for e in lines] == [
        ("agent", GREETING),
        ("caller", "Where is my order A-1042?"),
        ("agent", "It shipped yesterday."),
    ]
    assert record.usage is not None
    assert record.usage["responses"] == 3
    assert (record.input_tokens, record.output_tokens) == (
        record.usage["input_tokens"],
        record.usage["output_tokens"],
    )
    assert (record.input_tokens or 0) > 0
    assert (record.output_tokens or 0) > 0
    assert events(controller, call.call_id, "rate_limits")[0]["limits"][0]["name"] == "requests"


def test_a_late_caller_transcription_keeps_its_place(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A caller's words transcribed after the agent's answer began still come before it."""
    controller = center.start()
    script = [
        *GREETED,
        Say("Hello?", transcription="after"),
        ModelSay("Hi, how can I help?"),
        WaitFor("output_audio_buffer.stopped"),
        HangUp(),
    ]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    order = [e["type"] for e in call.server_events]
    transcribed = order.index("conversation.item.input_audio_transcription.completed")
    assert order.index("response.created", order.index("input_audio_buffer.committed")) < (
        transcribed
    )
    lines = [e.data["text"] for e in controller.services.store.transcript(call.call_id)]
    assert lines == [GREETING, "Hello?", "Hi, how can I help?"]


def test_a_failed_transcription_is_a_line_without_words(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """transcription.failed stores a caller line marked failed."""
    controller = center.start()
    script = [*GREETED, Say("mumble", transcription="failed"), WaitFor("response.done"), HangUp()]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    caller = [e for e in events(controller, call.call_id, "transcript") if e["speaker"] == "caller"]
    assert [(line["text"], line["status"]) for line in caller] == [("", "failed")]


def test_hanging_up_during_the_greeting_is_hung_up_by_caller(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A caller who leaves before being served is recorded as hung_up_by_caller."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=[WaitFor("response.create"), HangUp()])
    assert finished(controller, call.call_id).outcome == "hung_up_by_caller"


def test_end_call_says_goodbye_and_hangs_up(emulator: EmulatorThread, center: CallCenter) -> None:
    """The model's end_call: goodbye said and heard, then our hang-up; ended_by_agent."""
    controller = center.start()
    script = [*GREETED, Say("That's all, bye."), ModelCallTool("end_call", {"reason": "done"})]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    record = finished(controller, call.call_id)
    assert record.outcome == "ended_by_agent"
    assert (call.state, call.ended_by) == (CallState.ENDED, "controller")
    (goodbye,) = [e for e in sent(call, "response.create") if "Goodbye" in str(e["response"])]
    key = goodbye["response"]["metadata"]["callcenter"]
    (response_id,) = [
        e["response"]["id"]
        for e in served(call, "response.created")
        if (e["response"]["metadata"] or {}).get("callcenter") == key
    ]
    assert any(e["response_id"] == response_id for e in served(call, "output_audio_buffer.stopped"))
    assert events(controller, call.call_id, "ending") == [
        {"reason": "end_call", "outcome": "ended_by_agent"}
    ]


def test_a_caller_hanging_up_cancels_a_pending_tool(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The caller leaving while a tool runs cancels the tool's task."""
    controller = center.start()
    order = f"H-{len(sideband_tools.HELD)}"
    script = [
        *GREETED,
        Say("Can you hold my order?"),
        ModelCallTool("hold_line", {"order_id": order}),
        Wait(30),
    ]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    wait_for(lambda: order in sideband_tools.HELD, what="the tool to start")
    emulator.caller_hangs_up(call.call_id)
    wait_for(lambda: order in sideband_tools.CANCELLED, what="the tool to be cancelled")
    assert finished(controller, call.call_id).outcome == "hung_up_by_caller"
    assert outputs(call) == []


@pytest.mark.parametrize("code", [1006, 1012])
def test_a_dropped_sideband_is_reattached_and_the_call_goes_on(
    emulator: EmulatorThread, center: CallCenter, code: int
) -> None:
    """After a drop (cut TCP, or a service restart) the call reattaches and is served."""
    controller = center.start()
    script = [*GREETED, DropSocket(code), *ORDER_QUESTION, HangUp()]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    record = finished(controller, call.call_id)
    assert record.outcome == "completed"
    assert call.attaches == 2
    assert len(outputs(call)) == 1
    assert {"sideband_dropped", "sideband_reattached"} <= set(kinds(controller, call.call_id))


def test_a_refused_reattach_means_the_call_is_over(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A reattach answered 404 ends the call for us: hung_up_by_caller, no hang-up sent."""
    controller = center.start()
    emulator.faults.drop_sideband(after_events=3)
    emulator.faults.refuse_sideband(status=404, times=None)
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, Wait(30)])
    assert finished(controller, call.call_id).outcome == "hung_up_by_caller"
    assert call.attaches == 1
    assert [r.verb for r in call.rest_requests] == ["accept"]


def test_a_sideband_that_never_comes_back_hangs_the_call_up(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Reattaches refused with 503 past the window: we hang up; the call failed."""
    timeouts = RuntimeTimeouts(reattach_window=0.5, reattach_delay=0.05)
    controller = center.start(timeouts=timeouts)
    emulator.faults.drop_sideband(after_events=3)
    emulator.faults.refuse_sideband(status=503, times=None)
    call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, Wait(30)])
    assert finished(controller, call.call_id).outcome == "failed"
    assert (call.state, call.ended_by) == (CallState.ENDED, "controller")


def test_error_and_rate_limit_events_are_recorded(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A rate_limits.updated running low is stored as a snapshot."""
    controller = center.start()
    script = [*GREETED, RateLimits(requests_remaining=10), WaitFor("rate_limits.updated"), HangUp()]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    snapshots = events(controller, call.call_id, "rate_limits")
    assert snapshots[-1]["limits"][0]["remaining"] == 10


def test_mcp_servers_are_declared_and_approved_calls_run(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The accept declares the route's MCP server; an auto-approved tool call runs."""
    controller = center.start()
    script = [
        *GREETED,
        Say("What is my account number?"),
        ModelCallMcp("crm", "lookup_customer", {"phone": "+14155550123"}, output='{"id": 77}'),
        WaitFor("response.mcp_call.completed"),
        WaitFor("output_audio_buffer.stopped"),
        HangUp(),
    ]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    assert call.accept_body is not None
    (crm,) = [tool for tool in call.accept_body["tools"] if tool["type"] == "mcp"]
    assert (crm["server_label"], crm["require_approval"]) == ("crm", "always")
    (approval,) = events(controller, call.call_id, "mcp_approval")
    assert (approval["name"], approval["approve"]) == ("lookup_customer", True)
    (mcp_call,) = events(controller, call.call_id, "mcp_call")
    assert (mcp_call["name"], mcp_call["output"]) == ("lookup_customer", '{"id": 77}')


def test_mcp_calls_not_auto_approved_are_denied(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """A tool missing from auto_approve is denied; it never runs."""
    controller = center.start()
    script = [
        *GREETED,
        Say("Delete my account."),
        ModelCallMcp("crm", "delete_customer", {"id": 77}),
        WaitFor("mcp_approval_response"),
        WaitFor("output_audio_buffer.stopped"),
        HangUp(),
    ]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    (approval,) = events(controller, call.call_id, "mcp_approval")
    assert (approval["name"], approval["approve"]) == ("delete_customer", False)
    assert events(controller, call.call_id, "mcp_call") == []
    assert not any(e["type"] == "response.mcp_call.completed" for e in call.server_events)
