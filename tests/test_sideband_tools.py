"""Function tools over real WebSockets: results, bad arguments, errors, timeouts, slowness."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcenter.emulator import (
    EmulatorThread,
    HangUp,
    ModelCallTool,
    ModelSay,
    Say,
    Step,
    ToolCall,
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
    outputs,
    says,
    sent,
    wait_sent,
)

GREETED: tuple[Step, ...] = (ModelSay(GREETING), WaitFor("output_audio_buffer.stopped"))


@pytest.fixture
def center(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[CallCenter]:
    """Controllers on the sideband test config."""
    started = CallCenter(tmp_path, emulator, controller_env)
    yield started
    started.stop()


def tool_runs(url: str, tool: str) -> dict[str, float]:
    """How many runs of ``tool`` the controller's /metrics counts, by result (the counts are
    the process's, so tests compare them before and after)."""
    families = text_string_to_metric_families(httpx.get(url + "/metrics").text)
    return {
        sample.labels["result"]: sample.value
        for family in families
        for sample in family.samples
        if sample.name == "callcenter_tool_duration_seconds_count"
        and sample.labels.get("tool") == tool
    }


def asking(call: ModelCallTool, answer: str = "Thanks.") -> list[Step]:
    """A script where the caller asks, the model calls ``call``, then answers and hangs up."""
    return [
        *GREETED,
        Say("Where is my order?"),
        call,
        WaitFor("function_call_output"),
        ModelSay(answer),
        WaitFor("output_audio_buffer.stopped"),
        HangUp(),
    ]


def test_the_route_tools_are_declared_in_the_accept(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The accept body lists the route's tools; transfer_to_human names only our targets."""
    center.start()
    call = emulator.place_call(to_number=SUPPORT, script=[HangUp()])
    wait_for(lambda: call.accept_body is not None, what="the accept")
    assert call.accept_body is not None
    tools = {tool["name"]: tool for tool in call.accept_body["tools"] if tool["type"] == "function"}
    assert set(tools) == {
        "lookup_order",
        "flaky_lookup",
        "stuck_lookup",
        "slow_lookup",
        "hold_line",
        "transfer_to_human",
        "end_call",
    }
    assert tools["lookup_order"]["parameters"]["required"] == ["order_id"]
    target = tools["transfer_to_human"]["parameters"]["properties"]["target"]
    assert target["enum"] == ["desk", "backup", "sales"]
    assert call.accept_body["tool_choice"] == "auto"


def test_a_tool_result_goes_back_and_the_model_goes_on(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The result is the function_call_output, followed by exactly one response.create."""
    controller = center.start()
    script = asking(ModelCallTool("lookup_order", {"order_id": "A-1042"}), "It shipped.")
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    (output,) = outputs(call)
    assert json.loads(output["output"]) == {"order_id": "A-1042", "status": "shipped"}
    kinds = [e["type"] for e in call.client_events]
    after = kinds[kinds.index("conversation.item.create") + 1 :]
    assert after == ["response.create"]
    (record,) = events(controller, call.call_id, "tool")
    assert (record["name"], record["ok"], record["arguments"]) == (
        "lookup_order",
        True,
        '{"order_id": "A-1042"}',
    )
    assert record["duration_ms"] >= 0


def test_bad_arguments_become_an_error_output(emulator: EmulatorThread, center: CallCenter) -> None:
    """Arguments missing a required field: the model gets an error output; the call goes on."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=asking(ModelCallTool("lookup_order")))
    assert finished(controller, call.call_id).outcome == "completed"
    (output,) = outputs(call)
    assert "invalid arguments" in json.loads(output["output"])["error"]
    assert events(controller, call.call_id, "tool")[0]["ok"] is False


def test_a_raising_tool_becomes_an_error_output(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """The tool's exception is its output to the model, never the end of the call."""
    controller = center.start()
    counted = tool_runs(controller.url, "flaky_lookup")
    script = asking(ModelCallTool("flaky_lookup", {"order_id": "A-1"}))
    call = emulator.place_call(to_number=SUPPORT, script=script)
    assert finished(controller, call.call_id).outcome == "completed"
    (output,) = outputs(call)
    assert json.loads(output["output"]) == {"error": "ConnectionError: the order system is down"}
    assert tool_runs(controller.url, "flaky_lookup") == {
        **counted,
        "error": counted.get("error", 0) + 1,
    }


def test_a_tool_that_runs_too_long_times_out(emulator: EmulatorThread, center: CallCenter) -> None:
    """A tool past its timeout is answered with a timeout error and counted as a timeout."""
    controller = center.start()
    counted = tool_runs(controller.url, "stuck_lookup")
    script = asking(ModelCallTool("stuck_lookup", {"order_id": "A-1"}))
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    (output,) = outputs(call)
    assert json.loads(output["output"]) == {"error": "the tool timed out after 0.2s"}
    assert tool_runs(controller.url, "stuck_lookup") == {
        **counted,
        "timeout": counted.get("timeout", 0) + 1,
    }


def test_an_unknown_tool_is_an_error_output(emulator: EmulatorThread, center: CallCenter) -> None:
    """A tool the route does not list is answered with an error, and nothing runs."""
    controller = center.start()
    call = emulator.place_call(to_number=SUPPORT, script=asking(ModelCallTool("drop_tables")))
    finished(controller, call.call_id)
    (output,) = outputs(call)
    assert "no tool named 'drop_tables'" in output["output"]


def test_a_slow_tool_gets_a_one_moment_line(emulator: EmulatorThread, center: CallCenter) -> None:
    """Past slow_tool_notice the caller hears "one moment"; the result follows later."""
    controller = center.start()
    sideband_tools.RELEASE_SLOW.clear()
    script = asking(ModelCallTool("slow_lookup", {"order_id": "A-9"}), "It is delayed.")
    call = emulator.place_call(to_number=SUPPORT, script=script)
    wait_sent(call, lambda e: says(e, "One moment"), "the one-moment line")
    assert outputs(call) == []
    sideband_tools.RELEASE_SLOW.set()
    finished(controller, call.call_id)
    (output,) = outputs(call)
    assert json.loads(output["output"])["status"] == "delayed"


def test_several_calls_in_one_response_get_one_follow_up(
    emulator: EmulatorThread, center: CallCenter
) -> None:
    """Two calls in one response: two outputs, then a single response.create."""
    controller = center.start()
    both = ModelCallTool(
        "lookup_order", {"order_id": "A-1"}, also=(ToolCall("lookup_order", {"order_id": "A-2"}),)
    )
    script = [
        *GREETED,
        Say("Where are my two orders?"),
        both,
        WaitFor("function_call_output"),
        WaitFor("function_call_output"),
        ModelSay("Both shipped."),
        WaitFor("output_audio_buffer.stopped"),
        HangUp(),
    ]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    finished(controller, call.call_id)
    assert sorted(json.loads(o["output"])["order_id"] for o in outputs(call)) == ["A-1", "A-2"]
    kinds = [e["type"] for e in call.client_events]
    first_output = kinds.index("conversation.item.create")
    assert kinds[first_output:] == [
        "conversation.item.create",
        "conversation.item.create",
        "response.create",
    ]
    assert len(sent(call, "response.create")) == 2  # the greeting and the one follow-up
