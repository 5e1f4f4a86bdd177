"""Script steps as data, default replies, and the pure validators (no network)."""

from __future__ import annotations

import pytest

from callcenter.emulator import (
    Dtmf,
    ModelCallTool,
    Say,
    Step,
    ToolCall,
    WaitFor,
    check_client_event,
    step_from_json,
    step_to_json,
    steps_from_json,
)
from callcenter.emulator.events import merge_config
from callcenter.emulator.responses import say_exactly
from callcenter.emulator.validation import check_accept_body


@pytest.mark.parametrize(
    "step",
    [
        Say("hello", barge_in=True, transcription="after"),
        ModelCallTool("lookup", {"id": 1}, also=(ToolCall("end_call", {"reason": "done"}),)),
        WaitFor("response.done", timeout=2.5),
        Dtmf("#"),
    ],
)
def test_steps_survive_a_json_round_trip(step: Step) -> None:
    """step_to_json then step_from_json gives the same step."""
    assert step_from_json(step_to_json(step)) == step


def test_a_script_reads_from_json() -> None:
    """steps_from_json builds every step in order."""
    script = steps_from_json([{"type": "say", "text": "hi"}, {"type": "hang_up"}])
    assert [type(step).__name__ for step in script] == ["Say", "HangUp"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "yodel"}, "unknown step type"),
        ({"type": "say", "text": "x", "loud": True}, "no field 'loud'"),
        ({"type": "say"}, "text"),
        ({"type": "dtmf", "key": "x"}, "Dtmf key"),
        ({"type": "model_call_tool", "name": "f", "also": [{"arguments": {}}]}, "needs a 'name'"),
    ],
)
def test_an_invalid_step_is_a_value_error(data: dict[str, object], message: str) -> None:
    """Bad step objects raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        step_from_json(data)


@pytest.mark.parametrize(
    ("instructions", "said"),
    [
        ("Say exactly: Thanks for calling Acme.", "Thanks for calling Acme."),
        ('Greet the caller. Say exactly "Hi there." Then wait.', "Hi there."),
        ("say exactly:\u201cOne moment.\u201d", "One moment."),
        ("Be friendly.", None),
        (None, None),
    ],
)
def test_say_exactly_extracts_the_line(instructions: str | None, said: str | None) -> None:
    """'Say exactly: X' instructions give X, quoted or up to the end of the line."""
    assert say_exactly(instructions) == said


def test_merging_a_turn_detection_of_another_kind_replaces_it() -> None:
    """Objects merge key by key unless their type changes."""
    base = {"vad": {"type": "server_vad", "threshold": 0.5}, "voice": "marin"}
    assert merge_config(base, {"vad": {"threshold": 0.7}})["vad"] == {
        "type": "server_vad",
        "threshold": 0.7,
    }
    assert merge_config(base, {"vad": {"type": "semantic_vad"}})["vad"] == {"type": "semantic_vad"}


def test_accept_bodies_are_checked_against_the_sdk_types() -> None:
    """Known nested keys pass; unknown nested keys and bad types are named."""
    good = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}},
        "truncation": {"type": "retention_ratio", "retention_ratio": 0.8},
    }
    assert check_accept_body(good) is None
    wrong_kind = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "eagerness": "low"}}},
    }
    problem = check_accept_body(wrong_kind)
    assert problem is not None
    assert problem.param == "audio.input.turn_detection.eagerness"


def test_client_events_are_checked_against_the_sdk_types() -> None:
    """A function_call_output item missing its output is named precisely."""
    event = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c"},
    }
    problem = check_client_event(event)
    assert problem is not None
    assert (problem.code, problem.param) == ("missing_required_parameter", "item.output")
