"""Post-call analysis: the emulator's Responses API reads the transcript; call.analyzed is sent."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from callcenter.analysis.config import Analysis
from callcenter.analysis.schema import json_schema
from callcenter.config.loader import example_config_path, parse_config
from callcenter.emulator import EmulatorThread, HangUp, Wait
from callcenter.errors import ConfigError
from callcenter.notify.backoff import Backoff
from tests.harness import InProcessController, wait_for
from tests.notify_support import SECRET, SECRET_ENV, notify_config, receiver

StartController = Callable[..., InProcessController]

SUPPORT = "+18005550100"
TOKEN = "tok-analysis-test-0123456789"
LAST_KEY = 'on_transfer_failed = "resume"\n'  # the support route's last plain key
ANALYSIS = """[routes.analysis]
model = "gpt-5-mini"
summary = true
success = "The caller got a delivery date for their order."
[routes.analysis.extract]
order_id = "string"
wants_callback = "boolean"
sentiment = ["positive", "neutral", "negative"]
"""


def with_analysis(table: str = ANALYSIS) -> str:
    """The example config with an analysis on the support route."""
    text = example_config_path().read_text()
    assert LAST_KEY in text
    return text.replace(LAST_KEY, LAST_KEY + table, 1)


@pytest.mark.store_subject
def test_an_ended_call_is_analysed_stored_and_sent_as_call_analyzed(
    emulator: EmulatorThread, start_controller: StartController, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analysis follows the strict schema from extract, shows on the call, goes out."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    scripted = {
        "summary": "The caller asked where order 42 is.",
        "success": {"met": True, "reason": "A date was given."},
        "extracted": {"order_id": "42", "wants_callback": False, "sentiment": "positive"},
    }
    emulator.emulator.structured_answers.append(scripted)
    with receiver() as got:
        config = with_analysis() + notify_config(got.url, events='["call.ended", "call.analyzed"]')
        controller = start_controller(
            config,
            notify_backoff=Backoff(first=0.05, cap=0.2),
            env={"CALLCENTER_OPERATOR_TOKENS": f"ada:{TOKEN}"},
        )
        call = emulator.place_call(to_number=SUPPORT, script=[Wait(0.3), HangUp()])
        wait_for(lambda: got.of_type("call.analyzed"), what="call.analyzed to arrive")
        (event,) = got.of_type("call.analyzed")
        assert event["data"]["call_id"] == call.call_id
        assert event["data"]["analysis"] == scripted
        assert len(got.of_type("call.ended")) == 1
        (request,) = emulator.emulator.responses_requests
        text_format = request["text"]["format"]
        assert text_format["strict"] is True
        assert text_format["schema"]["properties"]["extracted"]["required"] == [
            "order_id",
            "wants_callback",
            "sentiment",
        ]
        assert "agent:" in request["input"]  # the stored transcript, greeting included
        shown = httpx.get(
            f"{controller.url}/api/v1/calls/{call.call_id}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).json()
        assert shown["analysis"] == scripted


def test_the_schema_is_strict_and_follows_extract() -> None:
    """Every property required, no others allowed; a list of strings becomes an enum."""
    schema = json_schema(Analysis(success="goal", extract={"n": "integer", "mood": ("up", "down")}))
    assert schema["required"] == ["summary", "success", "extracted"]
    assert schema["additionalProperties"] is False
    extracted = schema["properties"]["extracted"]
    assert extracted["properties"] == {
        "n": {"type": "integer"},
        "mood": {"type": "string", "enum": ["up", "down"]},
    }
    assert extracted["additionalProperties"] is False


def test_a_bad_extract_type_fails_at_start_up_with_its_line() -> None:
    """An extract field of an unknown type names the file, line and key path."""
    text = with_analysis('[routes.analysis]\nextract = { order_id = "uuid" }\n')
    line = text.splitlines().index('extract = { order_id = "uuid" }') + 1
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.toml")
    assert str(caught.value).startswith(
        f'c.toml:{line}: routes[1].analysis.extract.order_id: unknown type "uuid"'
    )
