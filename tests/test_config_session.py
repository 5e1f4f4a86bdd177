"""The [openai] and route session tables, silences on the accept, and model shutdowns."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from callcenter.config.loader import (
    ConfigError,
    parse_config,
    session_config,
    silence_timer_seconds,
)

TARGET = '[[targets]]\nname = "desk"\nuri = "tel:+14155550100"\n'
ROUTE = '[[routes]]\nname = "main"\ninstructions = "Help the caller."\n'
ESCALATES = '[routes.escalation]\ntarget = "desk"\n'
SESSION = """[routes.session]
reasoning = { effort = "%s" }
audio.input.noise_reduction = { type = "near_field" }
audio.input.turn_detection = { type = "semantic_vad", eagerness = "high" }
"""


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "callcenter.toml")
    return caught.value


def test_a_route_session_table_is_merged_over_the_accept_body() -> None:
    """reasoning, noise reduction and semantic VAD reach the accept; built keys stay."""
    config = parse_config(TARGET + ROUTE + SESSION % "low")
    body = session_config(config.route("main"), config)
    assert body["reasoning"] == {"effort": "low"}
    audio_input = body["audio"]["input"]
    assert audio_input["noise_reduction"] == {"type": "near_field"}
    assert audio_input["turn_detection"] == {"type": "semantic_vad", "eagerness": "high"}
    assert audio_input["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert body["instructions"] == "Help the caller."


def test_a_bad_session_value_names_the_file_line_and_key() -> None:
    """A value the SDK's type refuses is a config error listing what it accepts."""
    error = error_of(TARGET + ROUTE + SESSION % "extreme")
    assert str(error) == (
        'callcenter.toml:8: routes[0].session.reasoning.effort: "extreme" is not one of '
        "minimal, low, medium, high, xhigh"
    )


def test_an_unknown_session_key_is_a_config_error() -> None:
    """A key the SDK's types do not declare, however deep, is refused with its path."""
    error = error_of(ROUTE + '[routes.session]\naudio.input.noise_reduction = { kind = "x" }\n')
    assert error.key == "routes[0].session.audio.input.noise_reduction.kind"
    assert error.line == 5


def test_openai_session_then_route_session_win_and_lists_join() -> None:
    """[openai].session applies to every route, the route's over it; tools lists are joined."""
    text = (
        '[openai.session]\nmax_output_tokens = 500\ninstructions = "Global."\n'
        + ROUTE
        + 'tools = ["end_call"]\n[routes.session]\nmax_output_tokens = 300\n'
        + '[[routes.session.tools]]\ntype = "function"\nname = "lookup"\n'
    )
    config = parse_config(text)
    body = session_config(config.route("main"), config)
    assert body["max_output_tokens"] == 300
    assert body["instructions"] == "Global."
    assert [tool.get("name") for tool in body["tools"]] == ["end_call", "lookup"]


def test_an_audio_format_on_sip_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """audio.input.format is negotiated with the trunk: it loads, with a warning."""
    with caplog.at_level(logging.WARNING, logger="callcenter"):
        parse_config(ROUTE + '[routes.session]\naudio.input.format = { type = "audio/pcmu" }\n')
    (warning,) = [r for r in caplog.records if "negotiated with the trunk" in r.getMessage()]
    assert warning.key == "routes[0].session.audio.input.format"


def test_a_route_that_counts_silences_sets_the_idle_timeout() -> None:
    """Server VAD gets idle_timeout_ms (8 s, or the route's) when the route escalates."""
    plain = parse_config(TARGET + ROUTE + ESCALATES)
    vad = session_config(plain.route("main"), plain)["audio"]["input"]["turn_detection"]
    assert vad == {"type": "server_vad", "idle_timeout_ms": 8000}
    own = parse_config(
        TARGET
        + ROUTE
        + ESCALATES
        + '[routes.session]\naudio.input.turn_detection = { type = "server_vad", '
        + "idle_timeout_ms = 12000, threshold = 0.6 }\n"
    )
    vad = session_config(own.route("main"), own)["audio"]["input"]["turn_detection"]
    assert (vad["idle_timeout_ms"], vad["threshold"]) == (12000, 0.6)
    assert silence_timer_seconds(own.route("main"), own) is None


def test_semantic_vad_has_no_idle_timeout_so_the_call_times_silences() -> None:
    """Semantic VAD gets no idle_timeout_ms; the call keeps its own 8 s silence timer."""
    config = parse_config(TARGET + ROUTE + ESCALATES + SESSION % "low")
    vad = session_config(config.route("main"), config)["audio"]["input"]["turn_detection"]
    assert "idle_timeout_ms" not in vad
    assert silence_timer_seconds(config.route("main"), config) == 8.0


def test_a_route_without_escalation_sets_no_idle_timeout() -> None:
    """No escalation, no silences counted: turn detection stays the API's default."""
    config = parse_config(ROUTE)
    assert "turn_detection" not in session_config(config.route("main"), config)["audio"]["input"]


def test_a_model_already_shut_down_is_a_config_error() -> None:
    """A shutdown date that has passed (on the given today) is an error at the model's key."""
    text = '[openai]\nmodel = "gpt-4o-realtime-preview-2024-10-01"\n' + ROUTE
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "callcenter.toml", today=date(2026, 12, 2))
    assert str(caught.value) == (
        'callcenter.toml:2: openai.model: "gpt-4o-realtime-preview-2024-10-01" was shut down '
        "on 2025-09-10; choose another model"
    )
    parse_config(text, today=date(2025, 9, 9))  # still ahead: a warning only
