"""The timeline of a call: tool calls, the controller's lines, escalation, summary, ticket."""

from __future__ import annotations

import re
from typing import Any

from callcenter.call.escalation import SUMMARY_INSTRUCTIONS
from callcenter.emulator import RestRequest
from callcenter.simulation.timeline import (
    LONG_WIDTH,
    SidebandEvent,
    Timeline,
    interleave,
    render,
    ticket_of,
    tool_call,
    tool_output,
)

SUMMARY_REQUEST = {
    "type": "response.create",
    "response": {
        "conversation": "none",
        "output_modalities": ["text"],
        "instructions": SUMMARY_INSTRUCTIONS,
        "metadata": {"callcenter": "summary-7"},
    },
}


def said(at: float, text: str) -> SidebandEvent:
    event = {"type": "conversation.item.input_audio_transcription.completed", "transcript": text}
    return SidebandEvent(at, "openai", event)


def asked(at: float, key: str, instructions: str) -> SidebandEvent:
    response = {"instructions": instructions, "metadata": {"callcenter": key}}
    return SidebandEvent(at, "controller", {"type": "response.create", "response": response})


def lines(*moments: Any) -> list[str]:
    """The rendered lines without their times."""
    return [re.sub(r"^\s*[+-][\d.]+s  ", "", line) for line in render(moments, 100.0)]


def test_a_tool_call_reads_like_code() -> None:
    """Arguments become name=value pairs; arguments that are not an object show as they came."""
    assert tool_call("lookup_order", '{"order_id": "A-1042", "include_items": true}') == (
        'lookup_order(order_id="A-1042", include_items=true)'
    )
    assert tool_call("f", "{}") == "f()"
    assert tool_call("f", "not json") == "f(not json)"


def test_a_tool_output_is_shown_as_compact_json_or_quoted() -> None:
    """JSON output reads as JSON (not escaped); other text is quoted; both are clipped."""
    assert tool_output('{"status":"shipped"}') == '{"status": "shipped"}'
    assert tool_output("all good") == '"all good"'
    assert len(tool_output('{"x": "' + "y" * 500 + '"}')) == LONG_WIDTH


def test_the_tool_call_and_the_output_sent_back_are_one_line_each() -> None:
    """The output line names the tool its call id belongs to."""
    call = {
        "type": "response.function_call_arguments.done",
        "call_id": "c1",
        "name": "lookup_order",
        "arguments": '{"order_id": "A-1042"}',
    }
    output = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c1", "output": '{"found": true}'},
    }
    assert lines(
        SidebandEvent(101.0, "openai", call), SidebandEvent(101.1, "controller", output)
    ) == [
        'agent       calls lookup_order(order_id="A-1042")',
        'controller  sends the output of lookup_order: {"found": true}',
    ]


def test_the_controllers_lines_are_named_by_what_they_are() -> None:
    """A "Say exactly" request shows the line, labelled greeting or handoff line by its key."""
    assert lines(
        asked(100.1, "greeting-1", "Say exactly this to the caller, and nothing else: Hi!"),
        asked(102.0, "handoff-4", "Say exactly this to the caller, and nothing else: One moment."),
        asked(102.1, "followup-5", "Be brief."),
    ) == [
        'controller  asks the agent to say the greeting: "Hi!"',
        'controller  asks the agent to say the handoff line: "One moment."',
        'controller  asks the agent: "Be brief."',
    ]


def test_a_request_refused_while_the_agent_replies_and_sent_again_says_so() -> None:
    """The busy refusal is explained, and the same request sent again reads "again"."""
    busy = {
        "type": "error",
        "error": {"code": "conversation_already_has_active_response", "event_id": "cc_1"},
    }
    line = "Say exactly: One moment."
    assert lines(
        asked(102.0, "handoff-4", line),
        SidebandEvent(102.0, "openai", busy),
        asked(102.3, "handoff-4", line),
    ) == [
        'controller  asks the agent to say the handoff line: "One moment."',
        "openai      refuses it: the agent is still replying (asked again after)",
        'controller  asks the agent again to say the handoff line: "One moment."',
    ]


def test_an_escalation_names_the_caller_words_that_came_just_before() -> None:
    """The summary request is the escalation; the caller's words right before are its cause."""
    assert lines(
        said(103.0, "Can I talk to a human?"),
        SidebandEvent(103.1, "controller", SUMMARY_REQUEST),
    ) == [
        'caller      says "Can I talk to a human?"',
        'controller  escalates after the caller said "Can I talk to a human?": asks the agent '
        "for a handoff summary, out of band",
    ]


def test_an_escalation_long_after_the_callers_last_act_names_no_cause() -> None:
    """Words said seconds before (an operator's transfer, a time limit) are not the cause."""
    assert lines(said(103.0, "Thanks."), SidebandEvent(110.0, "controller", SUMMARY_REQUEST))[
        1
    ] == ("controller  escalates: asks the agent for a handoff summary, out of band")


def test_a_key_or_the_transfer_tool_is_named_as_the_cause() -> None:
    """A key press or the model's transfer_to_human call right before is the cause."""
    key = {"type": "input_audio_buffer.dtmf_event_received", "event": "0"}
    tool = {
        "type": "response.function_call_arguments.done",
        "call_id": "c9",
        "name": "transfer_to_human",
        "arguments": '{"reason": "refund"}',
    }
    by_key = lines(
        SidebandEvent(101.0, "openai", key), SidebandEvent(101.0, "controller", SUMMARY_REQUEST)
    )
    by_tool = lines(
        SidebandEvent(101.0, "openai", tool), SidebandEvent(101.0, "controller", SUMMARY_REQUEST)
    )
    assert by_key[1].startswith("controller  escalates after the caller pressed 0:")
    assert by_tool[1].startswith("controller  escalates after the agent called transfer_to_human:")


def test_server_errors_are_a_cause_but_a_refused_request_is_not() -> None:
    """Errors nobody caused can escalate; a refusal of the controller's own request cannot."""
    server = {"type": "error", "error": {"message": "boom", "event_id": None}}
    refused = {"type": "error", "error": {"message": "bad", "event_id": "cc_3"}}
    by_error = lines(
        SidebandEvent(101.0, "openai", server), SidebandEvent(101.0, "controller", SUMMARY_REQUEST)
    )
    not_by_refusal = lines(
        SidebandEvent(101.0, "openai", refused),
        SidebandEvent(101.0, "controller", SUMMARY_REQUEST),
    )
    assert by_error == [
        "openai      error: boom",
        "controller  escalates after an error event: asks the agent for a handoff summary, "
        "out of band",
    ]
    assert not_by_refusal[1].startswith("controller  escalates: asks")


def test_the_summary_text_is_shown_apart_from_what_the_agent_says() -> None:
    """An out-of-band response's text is the summary the model wrote, not speech."""
    summary = "Ada asked where order A-1042 is; it shipped. She wants a person."
    moments = [
        SidebandEvent(
            103.2,
            "openai",
            {
                "type": "response.created",
                "response": {
                    "id": "r_sum",
                    "conversation_id": None,
                    "metadata": {"callcenter": "summary-7"},
                },
            },
        ),
        SidebandEvent(
            103.2,
            "openai",
            {"type": "response.created", "response": {"id": "r_in", "conversation_id": "conv_1"}},
        ),
        SidebandEvent(
            103.5,
            "openai",
            {"type": "response.output_text.done", "response_id": "r_sum", "text": summary},
        ),
        SidebandEvent(
            103.6,
            "openai",
            {
                "type": "response.output_audio_transcript.done",
                "response_id": "r_in",
                "transcript": "One moment.",
            },
        ),
    ]
    assert lines(*moments) == [
        f'agent       writes the summary: "{summary}"',
        'agent       says "One moment."',
    ]


def test_the_ticket_is_read_from_the_refer_target() -> None:
    """A REFER whose SIP URI carries X-Callcenter-Ticket shows the ticket; others do not."""
    with_ticket = "sip:desk@pbx.example.com?X-Callcenter-Ticket=CC-0A1B2C3D4E"
    assert ticket_of(with_ticket) == "CC-0A1B2C3D4E"
    assert ticket_of("sip:desk@pbx.example.com?x-callcenter-ticket=CC-%201") == "CC- 1"
    assert ticket_of("tel:+14155550123") is None
    assert ticket_of("not a uri") is None
    refers = [
        RestRequest("refer", "rtc_1", {"target_uri": with_ticket}, 200, 104.0),
        RestRequest("refer", "rtc_1", {"target_uri": "tel:+14155550123"}, 200, 104.1),
    ]
    assert lines(*refers) == [
        f"controller  refers the call to {with_ticket} (ticket CC-0A1B2C3D4E)",
        "controller  refers the call to tel:+14155550123",
    ]


def test_a_client_item_goes_before_its_own_item_added_not_the_models() -> None:
    """A function_call_output is placed after the model's function_call item, which it answers."""
    server: list[dict[str, Any]] = [
        {"type": "conversation.item.added", "item": {"type": "function_call", "call_id": "c1"}},
        {"type": "response.function_call_arguments.done", "call_id": "c1"},
        {
            "type": "conversation.item.added",
            "item": {"type": "function_call_output", "call_id": "c1"},
        },
    ]
    client = [
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c1", "output": "{}"},
        }
    ]
    merged = [(e.sent_by, e.event["type"]) for e in interleave(server, client, 1.0)]
    assert merged == [
        ("openai", "conversation.item.added"),
        ("openai", "response.function_call_arguments.done"),
        ("controller", "conversation.item.create"),
        ("openai", "conversation.item.added"),
    ]


def test_a_response_request_goes_before_the_response_with_its_metadata() -> None:
    """A response the server started itself is not the answer to the controller's request."""
    ours = {"metadata": {"callcenter": "handoff-2"}}
    server = [
        {"type": "response.created", "response": {"id": "auto", "metadata": None}},
        {"type": "response.done", "response": {"id": "auto"}},
        {"type": "response.created", "response": {"id": "r2", **ours}},
    ]
    client = [{"type": "response.create", "response": ours}]
    merged = [(e.sent_by, e.event["type"]) for e in interleave(server, client, 1.0)]
    assert merged == [
        ("openai", "response.created"),
        ("openai", "response.done"),
        ("controller", "response.create"),
        ("openai", "response.created"),
    ]


def test_a_timeline_keeps_its_origin() -> None:
    """Times are seconds since the call was placed."""
    line = Timeline(100.0).line(said(101.25, "Hi"))
    assert line == '    +1.25s  caller      says "Hi"'
