"""The caller's wait over real sockets: stored, shown by the API, CLI, console and metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from callcenter.cli.calls import calls
from callcenter.emulator import (
    EmulatorThread,
    HangUp,
    ModelCallTool,
    ModelSay,
    Pacing,
    Say,
    WaitFor,
)
from callcenter.operators.openapi import openapi_document
from tests.harness import InProcessController
from tests.operator_support import ADA, GREETED, Api, logged_in, operator_center
from tests.sideband_support import SUPPORT, CallCenter, finished

# The emulated server's latency in this test: a requested response (the greeting, the answer
# after a tool) begins 0.2 s after it is asked for, an automatic one 0.3 s after the caller
# stopped speaking. The greeting's wait can only be longer (it starts at our accept); a turn's
# starts when speech_stopped arrives, which may be late, so it is held to half its delays
# (without them, a turn here takes tens of milliseconds).
REQUESTED, AUTOMATIC = 0.2, 0.3
SCRIPT = [
    *GREETED,
    Say("Where is my order?"),
    ModelCallTool("lookup_order", {"order_id": "A-1042"}),
    WaitFor("function_call_output"),
    ModelSay("It shipped yesterday."),
    WaitFor("output_audio_buffer.stopped"),
    Say("Thanks."),
    ModelSay("You're welcome."),
    WaitFor("output_audio_buffer.stopped"),
    HangUp(),
]


@pytest.fixture
def controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[InProcessController]:
    """A controller with the test operators' tokens, against an emulator with server timings."""
    emulator.emulator.pacing = dataclasses.replace(
        Pacing(),
        requested_response=(REQUESTED, REQUESTED),
        turn_response=(AUTOMATIC, AUTOMATIC),
    )
    center: CallCenter = operator_center(tmp_path, emulator, controller_env)
    yield center.start()
    center.stop()


def wait_counts(url: str) -> dict[str, float]:
    """The greeting and turn histograms' counts for the support route in /metrics."""
    families = text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text)
    names = {
        "callcenter_greeting_seconds_count": "greeting",
        "callcenter_turn_seconds_count": "turn",
    }
    return {
        names[sample.name]: sample.value
        for family in families
        for sample in family.samples
        if sample.name in names and sample.labels.get("route") == "support"
    }


def documented(latency: dict[str, Any]) -> bool:
    """The latency object has exactly the fields of the OpenAPI document's Latency schema."""
    schema = openapi_document()["components"]["schemas"]["Latency"]
    return set(latency) == set(schema["required"]) == set(schema["properties"])


def test_a_calls_waits_are_stored_and_shown_everywhere(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """Greeting and turns (one with a tool) reach the API, `calls show`, the console, /metrics."""
    before = wait_counts(controller.url)
    call = emulator.place_call(to_number=SUPPORT, script=SCRIPT)
    assert finished(controller, call.call_id).outcome == "completed"

    latency = Api(controller.url).get(f"/calls/{call.call_id}").json()["latency"]
    assert documented(latency)
    assert latency["greeting_ms"] >= REQUESTED * 1000
    assert latency["turns"] == 2
    # the tool turn: an automatic response calling the tool, then the requested answer
    assert latency["turn_max_ms"] >= (AUTOMATIC + REQUESTED) * 1000 / 2
    assert latency["turn_p50_ms"] >= AUTOMATIC * 1000 / 2
    assert latency["tool_ms"] > 0
    assert latency["model_p90_ms"] <= latency["turn_max_ms"]

    env = {"CALLCENTER_URL": controller.url, "CALLCENTER_OPERATOR_TOKEN": ADA}
    shown = CliRunner().invoke(calls, ["show", call.call_id], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"greeting: {latency['greeting_ms']:.0f} ms" in shown.output
    assert f"turns: 2, p50 {latency['turn_p50_ms']:.0f} ms" in shown.output

    page = logged_in(controller).get(f"/console/calls/{call.call_id}").text
    assert f"greeting: {latency['greeting_ms']:.0f} ms" in page

    after = wait_counts(controller.url)
    assert after["greeting"] - before.get("greeting", 0) == 1
    assert after["turn"] - before.get("turn", 0) == 2


def test_a_call_with_no_greeting_and_no_turn_shows_nulls(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """A caller who hangs up before hearing anything: latency is all null, zero turns."""
    call = emulator.place_call(to_number=SUPPORT, script=[HangUp()])
    finished(controller, call.call_id)
    latency = Api(controller.url).get(f"/calls/{call.call_id}").json()["latency"]
    assert documented(latency)
    assert latency["greeting_ms"] is None
    assert latency["turns"] == 0
    assert latency["turn_p50_ms"] is None
