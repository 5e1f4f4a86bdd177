"""Operator commands in the pure call session: instructions, and commands sent too early."""

from __future__ import annotations

from callcenter.call.actions import Action, OperatorInstruct, OperatorTransfer, Send
from tests.test_sideband_session import (
    CONFIG,
    escalated_by,
    event,
    feed,
    new_session,
    of,
    records,
    talking,
)


def sent_types(actions: list[Action]) -> list[str]:
    """The types of the client events among ``actions``."""
    return [str(a.event["type"]) for a in actions if isinstance(a, Send)]


def test_an_instruction_is_a_system_item_then_a_response() -> None:
    """OperatorInstruct: a recorded instruction, a system message, then response.create."""
    actions = feed(talking(), OperatorInstruct("Offer a voucher.", "ada"))
    assert records(actions, "operator_instruction") == [
        {"operator": "ada", "text": "Offer a voucher."}
    ]
    assert sent_types(actions) == ["conversation.item.create", "response.create"]
    (item,) = [a.event["item"] for a in of(actions, Send) if "item" in a.event]
    assert item == {
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "Offer a voucher."}],
    }


def test_an_instruction_during_a_handoff_is_recorded_and_ignored() -> None:
    """Once handing off, an instruction sends nothing."""
    session = talking()
    feed(session, OperatorTransfer("sales", "ada"))
    actions = feed(session, OperatorInstruct("Too late.", "bob"))
    assert sent_types(actions) == []
    assert records(actions, "operator_instruction_ignored")[0]["phase"] == "handing_off"


def test_a_transfer_before_the_session_is_up_waits_for_it() -> None:
    """A transfer sent before session.created is carried out once the sideband is up."""
    session = new_session("support", greeting=CONFIG.route("support").greeting)
    assert feed(session, OperatorTransfer("sales", "ada")) == []
    actions = feed(session, event("session.created", session={"type": "realtime"}))
    assert escalated_by(actions) == "operator"
