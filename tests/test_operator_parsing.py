"""The one parser of operators' commands, shared by the API and the console (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from callcenter.call.actions import OperatorHangup, OperatorInstruct, OperatorTransfer
from callcenter.config.loader import Config, example_config_path, load_config
from callcenter.operators.actions import Outcome
from callcenter.operators.parsing import MAX_INSTRUCTION, parse_command


@pytest.fixture(scope="module")
def config() -> Config:
    """The example config: targets support-desk, billing-desk, sales-desk, overflow."""
    return load_config(example_config_path())


def refusal(parsed: object) -> tuple[int, str]:
    """The status and code of a refusal."""
    assert isinstance(parsed, Outcome), parsed
    return parsed.status, parsed.code


def test_a_configured_target_is_a_transfer(config: Config) -> None:
    """A target name, spaces around it ignored, becomes a transfer by the operator."""
    parsed = parse_command("transfer", {"target": " support-desk "}, operator="ada", config=config)
    assert parsed == OperatorTransfer("support-desk", "ada")


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"target": "nowhere"}, (422, "unknown_target")), ({"target": ""}, (422, "invalid_body")),
     ({"target": 7}, (422, "invalid_body")), ({}, (422, "invalid_body")),
     ({"target": "x" * 600}, (422, "invalid_body")), (["support-desk"], (400, "bad_request")),
     (None, (400, "bad_request")), ({"target": "tel:+14155550100"}, (403, "uri_targets_disabled"))],
)  # fmt: skip
def test_bad_transfers_are_refused(config: Config, body: object, expected: tuple[int, str]) -> None:
    """An unknown target, a missing or odd one, a non-object body, a URI where not allowed."""
    assert refusal(parse_command("transfer", body, operator="ada", config=config)) == expected


def test_a_uri_is_a_transfer_where_config_allows_it(config: Config) -> None:
    """With allow_uri_targets, a tel: URI is a transfer; a word that is no URI is not."""
    allowing = dataclasses.replace(
        config, operators=dataclasses.replace(config.operators, allow_uri_targets=True)
    )
    parsed = parse_command(
        "transfer", {"target": "tel:+14155550100"}, operator="a", config=allowing
    )
    assert parsed == OperatorTransfer("tel:+14155550100", "a")
    wrong = parse_command("transfer", {"target": "desk"}, operator="a", config=allowing)
    assert refusal(wrong) == (422, "unknown_target")


def test_hangup_needs_no_body(config: Config) -> None:
    """A hang-up ignores whatever body came with it."""
    assert parse_command("hangup", None, operator="bob", config=config) == OperatorHangup("bob")


@pytest.mark.parametrize("text", ["", "   ", 5, "x" * (MAX_INSTRUCTION + 1)])
def test_bad_instructions_are_refused(config: Config, text: object) -> None:
    """An empty, blank, non-text or overlong instruction: 422."""
    parsed = parse_command("instruct", {"text": text}, operator="ada", config=config)
    assert refusal(parsed) == (422, "invalid_body")


def test_an_instruction_is_stripped(config: Config) -> None:
    """The instruction's text reaches the call without surrounding blanks."""
    parsed = parse_command("instruct", {"text": " Offer a callback. "}, operator="a", config=config)
    assert parsed == OperatorInstruct("Offer a callback.", "a")


def test_an_unknown_action_is_refused(config: Config) -> None:
    """Anything but transfer, hangup and instruct: 404 unknown_action."""
    assert refusal(parse_command("mute", {}, operator="ada", config=config)) == (
        404,
        "unknown_action",
    )
