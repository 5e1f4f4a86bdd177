"""The call session as a pure state machine: events in, actions out; no network, no clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from callcenter.call.actions import (
    Action,
    CancelTools,
    ControlDone,
    Escalated,
    Finish,
    HangUpCall,
    Input,
    OperatorHangup,
    OperatorTransfer,
    Record,
    ReferCall,
    RunTool,
    SaveHandoff,
    Send,
    SetTimer,
    SocketClosed,
    SocketDropped,
    TimerFired,
    ToolDone,
)
from callcenter.call.escalation import TransferTarget, ticket_for
from callcenter.call.session import CallSession, LiveCall
from callcenter.call.vocabulary import CallOutcome
from callcenter.config.loader import parse_config
from callcenter.tools.registry import ToolRegistry
from callcenter.tools.run import ToolResult
from callcenter.tools.spec import tool_spec
from tests.sideband_tools import lookup_order

CONFIG = parse_config(
    """
slow_tool_notice = 2.0

[[targets]]
name = "desk"
uri = "sip:desk@pbx.example.com"
fallback = "backup"
ticket_header = true
answer_timeout = 20

[[targets]]
name = "backup"
uri = "sip:backup@pbx.example.com"

[[targets]]
name = "sales"
uri = "tel:+14155550199"

[[routes]]
name = "support"
instructions = "Help."
greeting = "Hello, Acme."
handoff = "Connecting you now."
tools = ["lookup_order", "transfer_to_human", "end_call"]
dtmf = { "5" = "refer:sales", "9" = "end" }

[routes.escalation]
target = "desk"
phrases = ["human", "real person"]
dtmf = "0"
max_tool_failures = 2
max_silences = 2
max_errors = 2
max_minutes = 1

[[routes.mcp]]
server_label = "crm"
server_url = "https://crm.example.com/mcp"
auto_approve = ["lookup_customer"]

[[routes]]
name = "bare"
match = { to = ["+1800"] }
instructions = "Help."
tools = ["transfer_to_human"]

[[routes]]
name = "strict"
match = { to = ["+1801"] }
instructions = "Help."
handoff = "Connecting you now."
on_transfer_failed = "hangup"
escalation = { target = "desk", phrases = ["human"] }
"""
)
TOOLS = ToolRegistry([tool_spec(lookup_order)])
LOOKUP_ORDER = TOOLS.get("lookup_order")
CALL_ID = "rtc_test"
_EVENTS: TypeAdapter[RealtimeServerEvent] = TypeAdapter(RealtimeServerEvent)


def event(kind: str, **fields: Any) -> RealtimeServerEvent:
    """A server event, validated as the SDK's type."""
    return _EVENTS.validate_python({"type": kind, "event_id": "event_1", **fields})


def response(
    rid: str, status: str = "in_progress", key: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A response object; ``key`` is our request's metadata key."""
    metadata = {"callcenter": key} if key else None
    in_band = not (key or "").startswith("summary")
    conversation = "conv_1" if in_band else None
    return {"id": rid, "status": status, "metadata": metadata, "conversation_id": conversation} | (
        fields
    )


def created(rid: str, key: str | None = None) -> RealtimeServerEvent:
    return event("response.created", response=response(rid, key=key))


def done(rid: str, key: str | None = None, status: str = "completed", **fields: Any) -> Any:
    return event("response.done", response=response(rid, status, key, **fields))


def function_call(rid: str, call_id: str, name: str, arguments: object) -> RealtimeServerEvent:
    return event(
        "response.function_call_arguments.done",
        response_id=rid,
        item_id=f"item_{call_id}",
        output_index=0,
        call_id=call_id,
        name=name,
        arguments=json.dumps(arguments),
    )


def stopped(rid: str) -> RealtimeServerEvent:
    return event("output_audio_buffer.stopped", response_id=rid)


def started(rid: str) -> RealtimeServerEvent:
    return event("output_audio_buffer.started", response_id=rid)


def user_item(item_id: str) -> RealtimeServerEvent:
    item = {
        "id": item_id,
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    return event("conversation.item.added", item=item)


def heard(item_id: str, text: str) -> RealtimeServerEvent:
    return event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=0,
        transcript=text,
        usage={"type": "tokens", "input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
    )


def agent_message(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": text}],
    }


def new_session(route: str = "support", **call: Any) -> CallSession:
    live = LiveCall(CALL_ID, route, **call)
    return CallSession(live, route=CONFIG.route(route), config=CONFIG, tools=TOOLS)


def talking(route: str = "support") -> CallSession:
    """A session attached, its greeting done."""
    session = new_session(route, greeting=CONFIG.route(route).greeting)
    feed(session, event("session.created", session={"type": "realtime"}))
    key = last_key(session)
    if key is not None:
        feed(session, created("resp_greeting", key), done("resp_greeting", key))
    return session


_last_keys: dict[int, str] = {}


def feed(session: CallSession, *items: Input | RealtimeServerEvent) -> list[Action]:
    """Feed ``items`` in order; every action they gave."""
    actions: list[Action] = []
    for item in items:
        new = session.feed(item, 0.0)
        for action in new:
            if isinstance(action, Send) and action.event.get("type") == "response.create":
                params: Any = action.event["response"]
                _last_keys[id(session)] = params["metadata"]["callcenter"]
        actions += new
    return actions


def last_key(session: CallSession) -> str | None:
    """The metadata key of the last response.create the session sent."""
    return _last_keys.get(id(session))


def sends(actions: list[Action], kind: str) -> list[dict[str, Any]]:
    return [dict(a.event) for a in actions if isinstance(a, Send) and a.event["type"] == kind]


def creates(actions: list[Action]) -> list[dict[str, Any]]:
    return [e["response"] for e in sends(actions, "response.create")]


def records(actions: list[Action], kind: str) -> list[dict[str, Any]]:
    return [dict(a.data) for a in actions if isinstance(a, Record) and a.kind == kind]


def of(actions: list[Action], cls: type[Any]) -> list[Any]:
    return [a for a in actions if isinstance(a, cls)]


def ok(output: str = '{"status": "shipped"}') -> ToolResult:
    return ToolResult(True, output, None, 0.01)


def failed(error: str = "ConnectionError: down") -> ToolResult:
    return ToolResult(False, json.dumps({"error": error}), error, 0.01)


# -- the conversation ------------------------------------------------------------------------


def test_a_reattach_frees_the_line_for_the_next_request() -> None:
    """A request waiting behind a response lost with the old socket goes after the reattach."""
    session = talking()
    feed(session, created("resp_lost"))
    waiting = feed(
        session, event("input_audio_buffer.dtmf_event_received", event="4", received_at=1)
    )
    assert creates(waiting) == []
    resumed = feed(session, event("session.created", session={"type": "realtime"}))
    assert len(creates(resumed)) == 1


def test_the_greeting_is_asked_for_once_at_the_first_attach() -> None:
    """session.created brings the greeting; a second session.created (a reattach) does not."""
    session = new_session(greeting="Hello, Acme.")
    first = feed(session, event("session.created", session={"type": "realtime"}))
    (greeting,) = creates(first)
    assert "Hello, Acme." in greeting["instructions"]
    assert greeting["tool_choice"] == "none"
    again = feed(session, event("session.created", session={"type": "realtime"}))
    assert creates(again) == []
    assert records(again, "sideband_reattached") == [{"attach": 2}]


def test_a_request_waits_for_the_running_response() -> None:
    """A response.create is held while a response runs and sent once it is done."""
    session = talking()
    feed(session, created("resp_vad"))
    waiting = feed(
        session, event("input_audio_buffer.dtmf_event_received", event="4", received_at=1)
    )
    assert creates(waiting) == []
    released = feed(session, done("resp_vad"))
    assert len(creates(released)) == 1


def test_a_refused_request_is_sent_again_after_the_running_response() -> None:
    """An active-response error puts our request back in line until the next response.done."""
    session = talking()
    actions = feed(
        session, event("input_audio_buffer.dtmf_event_received", event="4", received_at=1)
    )
    (request,) = sends(actions, "response.create")
    refusal = {
        "type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": "busy",
        "event_id": request["event_id"],
    }
    assert feed(session, event("error", error=refusal)) == []
    resent = sends(feed(session, done("resp_unknown")), "response.create")
    assert [e["event_id"] for e in resent] == [request["event_id"]]


def test_a_tool_output_goes_back_then_one_response_create() -> None:
    """The tool runs at arguments.done; its output is sent, then one response.create."""
    session = talking()
    feed(session, created("resp_1"))
    started_tool = feed(
        session, function_call("resp_1", "call_1", "lookup_order", {"order_id": "A-1"})
    )
    assert of(started_tool, RunTool) == [RunTool("call_1", LOOKUP_ORDER, '{"order_id": "A-1"}')]
    assert of(started_tool, SetTimer) == [SetTimer("slow:resp_1", 2.0)]
    finished = feed(session, ToolDone("call_1", ok()))
    items = [e["item"] for e in sends(finished, "conversation.item.create")]
    assert items == [
        {"type": "function_call_output", "call_id": "call_1", "output": '{"status": "shipped"}'}
    ]
    assert creates(finished) == []  # the response is not done yet
    assert records(finished, "tool")[0]["ok"] is True
    assert len(creates(feed(session, done("resp_1")))) == 1


def test_several_calls_of_one_response_get_one_follow_up() -> None:
    """Two calls in one response: two outputs, and one response.create after both."""
    session = talking()
    feed(
        session,
        created("resp_1"),
        function_call("resp_1", "call_1", "lookup_order", {"order_id": "A-1"}),
        function_call("resp_1", "call_2", "lookup_order", {"order_id": "A-2"}),
        done("resp_1"),
    )
    first = feed(session, ToolDone("call_2", ok()))
    assert creates(first) == []
    second = feed(session, ToolDone("call_1", ok()))
    assert len(sends(first + second, "conversation.item.create")) == 2
    assert len(creates(second)) == 1


def test_a_slow_tool_gets_one_moment_line() -> None:
    """The slow timer while the tool runs says a short line; after it finished, nothing."""
    session = talking()
    feed(
        session,
        created("resp_1"),
        function_call("resp_1", "call_1", "lookup_order", {"order_id": "A"}),
    )
    feed(session, done("resp_1"))
    notice = creates(feed(session, TimerFired("slow:resp_1")))
    assert len(notice) == 1
    assert "One moment" in notice[0]["instructions"]
    other = talking()
    feed(
        other,
        created("resp_1"),
        function_call("resp_1", "call_1", "lookup_order", {"order_id": "A"}),
    )
    feed(other, ToolDone("call_1", ok()))
    assert creates(feed(other, TimerFired("slow:resp_1"))) == []


def test_an_unknown_tool_gets_an_error_output() -> None:
    """A name the route does not list is answered with an error, and counts as a failure."""
    session = talking()
    actions = feed(session, created("resp_1"), function_call("resp_1", "call_1", "drop_tables", {}))
    (item,) = [e["item"] for e in sends(actions, "conversation.item.create")]
    assert "no tool named 'drop_tables'" in item["output"]
    assert of(actions, RunTool) == []
    assert session._triggers.failed_tools == 1


def test_a_listed_tool_missing_from_the_registry_gets_an_error_output() -> None:
    """The session answers a tool the route lists but no module provides; nothing runs."""
    live = LiveCall(CALL_ID, "support")
    session = CallSession(
        live, route=CONFIG.route("support"), config=CONFIG, tools=ToolRegistry([])
    )
    feed(session, event("session.created", session={"type": "realtime"}))
    call = function_call("resp_1", "call_1", "lookup_order", {"order_id": "A"})
    actions = feed(session, created("resp_1"), call)
    (item,) = [e["item"] for e in sends(actions, "conversation.item.create")]
    assert "no tool named 'lookup_order'" in item["output"]
    assert of(actions, RunTool) == []


def test_transcripts_keep_conversation_order_when_transcription_is_late() -> None:
    """A caller line transcribed after the agent answered still comes first (by seq)."""
    session = talking()
    actions = feed(
        session,
        user_item("item_caller"),
        created("resp_1"),
        event("conversation.item.added", item=agent_message("item_agent", "")),
        done("resp_1", output=[agent_message("item_agent", "You said hi.")]),
        heard("item_caller", "Hi there"),
    )
    lines = records(actions, "transcript")
    assert [line["speaker"] for line in lines] == ["agent", "caller"]
    ordered = sorted(lines, key=lambda line: line["seq"])
    assert [line["text"] for line in ordered] == ["Hi there", "You said hi."]


def test_usage_is_summed_over_responses_and_transcriptions() -> None:
    """response.done usage and transcription usage add up."""
    session = talking()
    usage = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
    feed(session, done("resp_1", usage=usage), done("resp_2", usage=usage), heard("item_1", "hi"))
    assert (session.usage.input_tokens, session.usage.output_tokens) == (200, 40)
    assert session.usage.transcription_tokens == 8


def test_rate_limits_are_recorded_at_most_every_minute_unless_low() -> None:
    """A snapshot is recorded, the next ones only after a minute or when running low."""
    session = talking()

    def limits(remaining: int) -> RealtimeServerEvent:
        limit = {"name": "requests", "limit": 100, "remaining": remaining, "reset_seconds": 1.0}
        return event("rate_limits.updated", rate_limits=[limit])

    assert len(records(session.feed(limits(90), 0.0), "rate_limits")) == 1
    assert records(session.feed(limits(80), 10.0), "rate_limits") == []
    assert len(records(session.feed(limits(5), 20.0), "rate_limits")) == 1
    assert len(records(session.feed(limits(70), 90.0), "rate_limits")) == 1


# -- escalation -----------------------------------------------------------------------------


def escalated_by(actions: list[Action]) -> str | None:
    found = records(actions, "escalation")
    return found[0]["trigger"] if found else None


def test_transfer_to_human_runs_the_whole_handoff() -> None:
    """Summary out of band and line at once; after both, the ticket is saved and REFER sent."""
    session = talking()
    actions = feed(
        session,
        created("resp_1"),
        function_call("resp_1", "call_1", "transfer_to_human", {"reason": "refund"}),
    )
    assert escalated_by(actions) == "tool"
    ticket = ticket_for(CALL_ID)
    assert of(actions, Escalated) == [Escalated("tool", "desk", ticket)]  # counted once
    (summary,) = creates(actions)  # out of band: it does not wait for resp_1
    assert (summary["conversation"], summary["output_modalities"]) == ("none", ["text"])
    (line,) = creates(feed(session, done("resp_1")))
    assert "Connecting you now." in line["instructions"]
    feed(session, created("resp_line", line["metadata"]["callcenter"]))
    text = {
        "id": "i",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Wants a refund."}],
    }
    after_summary = feed(
        session, done("resp_sum", summary["metadata"]["callcenter"], output=[text])
    )
    assert of(after_summary, ReferCall) == []  # the line is not heard yet
    key = line["metadata"]["callcenter"]
    moving = feed(session, started("resp_line"), done("resp_line", key), stopped("resp_line"))
    assert of(moving, SaveHandoff) == [SaveHandoff(ticket, "tool", "Wants a refund.")]
    uri = f"sip:desk@pbx.example.com?X-Callcenter-Ticket={ticket}"
    assert of(moving, ReferCall) == [ReferCall(uri)]
    relayed = feed(session, ControlDone("refer", uri))
    assert of(relayed, Finish) == []  # relayed only: wait for the call to leave
    assert [(t.seconds) for t in of(relayed, SetTimer)] == [20]  # the desk's answer_timeout
    assert session.phase == "transferring"
    assert not session.leaving  # a drop now is reattached
    over = session.feed(SocketClosed(), 4.5)
    assert of(over, Finish) == [Finish(CallOutcome.TRANSFERRED, uri)]
    (transferred,) = records(over, "transferred")
    assert transferred["target"] == "desk"
    assert transferred["result"] == "transferred"
    assert session.phase == "over"


def test_the_handoff_waits_no_longer_than_its_bounds() -> None:
    """Without summary nor playback, the timers move the handoff on to the REFER."""
    session = talking()
    actions = feed(session, heard("item_1", "I want a HUMAN now"))
    summary, line = creates(actions)
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    moving = feed(session, TimerFired(line["metadata"]["callcenter"]))
    assert of(moving, SaveHandoff)[0].summary is None
    assert len(of(moving, ReferCall)) == 1


def test_a_refused_refer_tries_the_fallback_then_tells_the_caller_and_resumes() -> None:
    """desk refuses, backup refuses: the caller hears why, then the agent carries on."""
    session = talking()
    actions = feed(
        session, event("input_audio_buffer.dtmf_event_received", event="0", received_at=1)
    )
    summary, line = creates(actions)
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    key = line["metadata"]["callcenter"]
    first = of(feed(session, TimerFired(key)), ReferCall)[0]
    feed(session, created("resp_line", key), done("resp_line", key))
    fallback = feed(session, ControlDone("refer", first.uri, 503, "unavailable"))
    assert of(fallback, ReferCall) == [ReferCall("sip:backup@pbx.example.com")]
    failing = feed(session, ControlDone("refer", "sip:backup@pbx.example.com", 400, "bad"))
    (failed,) = records(failing, "transfer_failed")
    assert failed["then"] == "resume"
    assert failed["tried"] == [
        {"target": "desk", "result": "refused"},
        {"target": "backup", "result": "refused"},
    ]
    (sorry,) = creates(failing)
    assert "couldn't reach a colleague" in sorry["instructions"]
    assert of(failing, HangUpCall) == []
    assert session.phase == "talking"
    sorry_key = sorry["metadata"]["callcenter"]
    feed(session, created("resp_sorry", sorry_key), done("resp_sorry", sorry_key))
    key_note = feed(
        session, event("input_audio_buffer.dtmf_event_received", event="4", received_at=2)
    )
    assert len(creates(key_note)) == 1  # the agent answers again


def test_an_unanswered_transfer_tries_the_next_target_when_its_answer_timeout_fires() -> None:
    """Relayed to desk but still here when its timer fires: unanswered, then backup's REFER."""
    session = talking()
    summary, line = creates(feed(session, heard("item_1", "a human please")))
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    first = of(feed(session, TimerFired(line["metadata"]["callcenter"])), ReferCall)[0]
    (answer,) = of(session.feed(ControlDone("refer", first.uri), 10.0), SetTimer)
    assert answer.seconds == 20
    assert session.feed(TimerFired("not-this-one"), 29.0) == []
    moved = session.feed(TimerFired(answer.name), 30.0)
    (unanswered,) = records(moved, "transfer_unanswered")
    assert (unanswered["target"], unanswered["seconds"], unanswered["answer_timeout"]) == (
        "desk",
        30.0,
        20,
    )
    assert of(moved, ReferCall) == [ReferCall("sip:backup@pbx.example.com")]
    assert of(session.feed(ControlDone("refer", "sip:backup@pbx.example.com"), 31.0), SetTimer)


def test_every_target_failed_hangs_up_where_the_route_says_so() -> None:
    """on_transfer_failed = "hangup": told, then hung up with the outcome transfer_failed."""
    session = talking("strict")
    summary, line = creates(feed(session, heard("item_1", "a human please")))
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    key = line["metadata"]["callcenter"]
    first = of(feed(session, TimerFired(key)), ReferCall)[0]
    feed(session, created("resp_line", key), done("resp_line", key))
    feed(session, ControlDone("refer", first.uri, 403, "forbidden"))
    failing = feed(session, ControlDone("refer", "sip:backup@pbx.example.com", 486, "busy"))
    assert records(failing, "transfer_failed")[0]["then"] == "hangup"
    (sorry,) = creates(failing)
    hangup = feed(session, TimerFired(sorry["metadata"]["callcenter"]))
    assert of(hangup, HangUpCall) == [HangUpCall()]
    over = feed(session, ControlDone("hangup"))
    assert of(over, Finish) == [Finish(CallOutcome.TRANSFER_FAILED)]


def test_a_refer_answered_404_means_the_caller_is_gone() -> None:
    """REFER 404: no fallback is tried; the caller hung up."""
    session = talking()
    actions = feed(session, heard("item_1", "a real person please"))
    summary, line = creates(actions)
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    refer = of(feed(session, TimerFired(line["metadata"]["callcenter"])), ReferCall)[0]
    assert of(feed(session, ControlDone("refer", refer.uri, 404, "gone")), Finish) == [
        Finish(CallOutcome.HUNG_UP_BY_CALLER)
    ]


@pytest.mark.parametrize(
    ("said", "trigger"),
    [
        ("Can I talk to a HUMAN?", "phrase"),
        ("I need a real   person", "phrase"),
        ("humanity is doomed", None),
        ("a really personal matter", None),
    ],
)
def test_phrases_match_whole_words_in_any_case(said: str, trigger: str | None) -> None:
    """Phrases escalate only as whole words, any case, any spacing."""
    assert escalated_by(feed(talking(), heard("item_1", said))) == trigger


def test_failed_tools_in_a_row_escalate_and_a_success_resets() -> None:
    """Two failures in a row escalate; a success in between starts the count again."""
    session = talking()
    for n, result in enumerate((failed(), ok(), failed())):
        call = f"call_{n}"
        feed(
            session,
            created(f"r{n}"),
            function_call(f"r{n}", call, "lookup_order", {"order_id": "A"}),
        )
        assert escalated_by(feed(session, ToolDone(call, result))) is None
        feed(session, done(f"r{n}"))
    feed(session, created("r9"), function_call("r9", "call_9", "lookup_order", {"order_id": "A"}))
    assert escalated_by(feed(session, ToolDone("call_9", failed()))) == "tool_failures"


def test_silences_in_a_row_escalate_and_speech_resets() -> None:
    """Two idle timeouts in a row escalate; the caller speaking in between resets."""
    session = talking()
    timeout = event(
        "input_audio_buffer.timeout_triggered", item_id="item_1", audio_start_ms=0, audio_end_ms=1
    )
    speech = event("input_audio_buffer.speech_started", item_id="item_2", audio_start_ms=0)
    assert escalated_by(feed(session, timeout, speech, timeout)) is None
    assert escalated_by(feed(session, timeout)) == "silence"


def test_error_events_escalate_at_the_limit() -> None:
    """Each error is recorded; the second escalates."""
    session = talking()
    error = event("error", error={"type": "server_error", "message": "boom"})
    first = feed(session, error)
    assert records(first, "error")[0]["type"] == "server_error"
    assert escalated_by(first) is None
    assert escalated_by(feed(session, error)) == "errors"


def test_the_call_length_timer_escalates() -> None:
    """max_minutes sets a timer at the first attach; when it fires the call escalates."""
    session = new_session(greeting="Hi")
    attach = feed(session, event("session.created", session={"type": "realtime"}))
    assert SetTimer("max_length", 60.0) in attach
    assert escalated_by(feed(session, TimerFired("max_length"))) == "max_length"


def test_an_operator_transfers_to_a_uri_or_hangs_up() -> None:
    """Operator commands: a transfer escalates to their target; a hang-up ends at once."""
    session = talking()
    actions = feed(session, OperatorTransfer("sip:boss@pbx.example.com", "ada"))
    assert records(actions, "escalation")[0]["target"] == "sip:boss@pbx.example.com"
    assert escalated_by(actions) == "operator"
    other = talking()
    ending = feed(other, OperatorHangup("ada"))
    assert of(ending, HangUpCall) == [HangUpCall()]
    finished = of(feed(other, ControlDone("hangup")), Finish)
    assert finished == [Finish(CallOutcome.ENDED_BY_OPERATOR)]


def test_a_second_trigger_during_a_handoff_is_ignored() -> None:
    """Once handing off, further triggers change nothing."""
    session = talking()
    feed(session, heard("item_1", "human"))
    assert feed(
        session, event("input_audio_buffer.dtmf_event_received", event="0", received_at=1)
    ) == [Record("dtmf", {"key": "0"})]


def test_a_route_without_a_target_refuses_transfer_to_human() -> None:
    """transfer_to_human on a route with no escalation target is an error output, no handoff."""
    session = talking("bare")
    actions = feed(
        session, created("r1"), function_call("r1", "c1", "transfer_to_human", {"reason": "x"})
    )
    (item,) = [e["item"] for e in sends(actions, "conversation.item.create")]
    assert "no colleague" in item["output"]
    assert session.phase == "talking"


def test_transfer_to_an_unconfigured_target_is_refused() -> None:
    """The model may only name configured targets."""
    session = talking()
    arguments = {"reason": "x", "target": "sip:evil@example.com"}
    actions = feed(
        session, created("r1"), function_call("r1", "c1", "transfer_to_human", arguments)
    )
    (item,) = [e["item"] for e in sends(actions, "conversation.item.create")]
    assert "unknown target" in item["output"]
    assert escalated_by(actions) is None


# -- keys, MCP, ending -----------------------------------------------------------------------


def test_dtmf_keys_follow_the_route_map() -> None:
    """5 refers to sales (a tel: target, no ticket header); 9 ends; 4 is told to the model."""
    session = talking()
    actions = feed(
        session, event("input_audio_buffer.dtmf_event_received", event="5", received_at=1)
    )
    assert escalated_by(actions) == "dtmf"
    summary, line = creates(actions)
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    assert of(feed(session, TimerFired(line["metadata"]["callcenter"])), ReferCall) == [
        ReferCall("tel:+14155550199")
    ]
    ending = feed(
        talking(), event("input_audio_buffer.dtmf_event_received", event="9", received_at=1)
    )
    assert "Goodbye" in creates(ending)[0]["instructions"]
    other = feed(
        talking(), event("input_audio_buffer.dtmf_event_received", event="4", received_at=1)
    )
    (note,) = [e["item"] for e in sends(other, "conversation.item.create")]
    assert note["content"] == [{"type": "input_text", "text": "The caller pressed 4."}]
    assert len(creates(other)) == 1


def test_end_call_says_goodbye_then_hangs_up() -> None:
    """end_call: an output, the goodbye, and the hang-up once it has been heard."""
    session = talking()
    actions = feed(
        session, created("r1"), function_call("r1", "c1", "end_call", {"reason": "done"})
    )
    assert creates(actions) == []  # the goodbye waits for the running response
    (goodbye,) = creates(feed(session, done("r1")))
    key = goodbye["metadata"]["callcenter"]
    assert of(feed(session, created("r2", key), started("r2"), done("r2", key)), HangUpCall) == []
    assert of(feed(session, stopped("r2")), HangUpCall) == [HangUpCall()]
    assert of(feed(session, ControlDone("hangup", status=404, error="gone")), Finish) == [
        Finish(CallOutcome.ENDED_BY_AGENT)
    ]


def test_mcp_approval_requests_are_answered_by_policy() -> None:
    """auto_approve tools are approved, others denied; the model goes on after the response."""
    session = talking()
    feed(session, created("r1"))
    decisions = []
    for request_id, tool in (("mcpr_1", "lookup_customer"), ("mcpr_2", "delete_customer")):
        item = {
            "id": request_id,
            "type": "mcp_approval_request",
            "server_label": "crm",
            "name": tool,
            "arguments": "{}",
        }
        actions = feed(session, event("conversation.item.added", item=item))
        (answer,) = [e["item"] for e in sends(actions, "conversation.item.create")]
        decisions.append((answer["approval_request_id"], answer["approve"]))
        assert records(actions, "mcp_approval")[0]["name"] == tool
    assert decisions == [("mcpr_1", True), ("mcpr_2", False)]
    assert len(creates(feed(session, done("r1")))) == 1
    call = {
        "id": "item_call",
        "type": "mcp_call",
        "server_label": "crm",
        "name": "lookup_customer",
        "arguments": "{}",
        "output": '{"id": 7}',
    }
    ran = feed(
        session, event("response.output_item.done", response_id="r2", output_index=0, item=call)
    )
    assert records(ran, "mcp_call")[0]["output"] == '{"id": 7}'


# -- the end of a call -----------------------------------------------------------------------


def test_a_hang_up_after_an_answered_turn_is_completed() -> None:
    """The caller leaving a quiet, answered call: completed; mid-way: hung_up_by_caller."""
    session = talking()
    feed(session, user_item("item_1"), created("r1"), done("r1"))
    assert of(feed(session, SocketClosed()), Finish) == [Finish(CallOutcome.COMPLETED)]
    busy = talking()
    feed(busy, user_item("item_1"), created("r1"))
    actions = feed(busy, SocketClosed())
    assert of(actions, Finish) == [Finish(CallOutcome.HUNG_UP_BY_CALLER)]
    assert CancelTools() in actions


def test_a_lost_sideband_hangs_the_call_up() -> None:
    """Given up on reattaching: the call is hung up and recorded as failed."""
    session = talking()
    assert records(feed(session, SocketDropped(1006)), "sideband_dropped") == [{"code": 1006}]
    assert of(feed(session, SocketClosed(lost=True)), HangUpCall) == [HangUpCall()]
    assert of(feed(session, ControlDone("hangup")), Finish) == [Finish(CallOutcome.FAILED)]


def test_a_refer_route_transfers_at_start_or_after_its_line() -> None:
    """No line: REFER at start, confirmed when the sideband closes. A line: said, then REFER."""
    plain = new_session(transfer_to=(TransferTarget("sip:a@pbx.example.com"),))
    assert plain.start() == [ReferCall("sip:a@pbx.example.com")]
    assert feed(plain, event("session.created", session={"type": "realtime"})) == []
    assert of(feed(plain, ControlDone("refer", "sip:a@pbx.example.com")), Finish) == []
    assert of(feed(plain, SocketClosed()), Finish) == [
        Finish(CallOutcome.REFERRED, "sip:a@pbx.example.com")
    ]
    spoken = new_session(
        handoff="One moment.", transfer_to=(TransferTarget("sip:a@pbx.example.com"),)
    )
    assert spoken.start() == []
    (line,) = creates(feed(spoken, event("session.created", session={"type": "realtime"})))
    assert "One moment." in line["instructions"]
    assert of(feed(spoken, TimerFired(line["metadata"]["callcenter"])), ReferCall) == [
        ReferCall("sip:a@pbx.example.com")
    ]


def test_finish_takes_only_the_outcome_of_a_call_that_is_over() -> None:
    """Finish(accepted) is refused: the session can only end a call with a final outcome."""
    with pytest.raises(ValueError, match="not the outcome of a call that is over"):
        Finish(CallOutcome.ACCEPTED)
    assert Finish(CallOutcome.TRANSFERRED, "tel:+1").status == "referred"


def test_every_target_failed_without_a_sideband_hangs_up_even_where_the_route_resumes() -> None:
    """The sideband closed during the REFERs: no agent can go on, so the call is hung up."""
    session = talking()
    summary, line = creates(feed(session, heard("item_1", "a human please")))
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    first = of(feed(session, TimerFired(line["metadata"]["callcenter"])), ReferCall)[0]
    assert feed(session, SocketClosed()) == []  # the REFER is under way: wait for its answer
    feed(session, ControlDone("refer", first.uri, 403, "forbidden"))
    failing = feed(session, ControlDone("refer", "sip:backup@pbx.example.com", 403, "forbidden"))
    assert records(failing, "transfer_failed")[0]["then"] == "hangup"
    assert of(failing, HangUpCall) == [HangUpCall()]
    over = feed(session, ControlDone("hangup", None, 404, "gone"))
    assert of(over, Finish) == [Finish(CallOutcome.TRANSFER_FAILED)]


SEMANTIC = parse_config(
    """
[[targets]]
name = "desk"
uri = "sip:desk@pbx.example.com"

[[routes]]
name = "calm"
instructions = "Help."

[routes.escalation]
target = "desk"
max_silences = 2

[routes.session]
audio.input.turn_detection = { type = "semantic_vad" }
"""
)


def test_semantic_vad_silences_are_timed_by_the_session() -> None:
    """Under semantic VAD response.done arms an 8 s timer; speech voids it; two in a row
    escalate (timers are fed in, no clock waits)."""
    live = LiveCall(CALL_ID, "calm")
    session = CallSession(live, route=SEMANTIC.route("calm"), config=SEMANTIC, tools=TOOLS)
    feed(session, event("session.created", session={"type": "realtime"}))
    armed = of(feed(session, created("r1"), done("r1")), SetTimer)
    assert armed == [SetTimer("silence:1", 8.0)]
    speech = event("input_audio_buffer.speech_started", item_id="item_2", audio_start_ms=0)
    feed(session, speech)
    assert feed(session, TimerFired("silence:1")) == []  # the caller spoke: void
    (again,) = of(feed(session, created("r2"), done("r2")), SetTimer)
    first = feed(session, TimerFired(again.name))
    assert records(first, "silence") == [{"in_a_row": 1}]
    assert creates(first)  # the model checks on the caller, as after an idle timeout
    (third,) = of(feed(session, created("r3"), done("r3")), SetTimer)
    assert escalated_by(feed(session, TimerFired(third.name))) == "silence"


def failed_mcp_call(item_id: str) -> RealtimeServerEvent:
    item = {
        "id": item_id,
        "type": "mcp_call",
        "server_label": "crm",
        "name": "lookup_customer",
        "arguments": "{}",
        "output": None,
        "error": {"type": "tool_execution_error", "message": "CRM is down"},
    }
    return event("response.output_item.done", response_id="r1", output_index=0, item=item)


def test_mcp_failures_are_recorded_and_count_as_tool_failures() -> None:
    """A failed mcp_call and mcp_list_tools.failed are recorded; two in a row escalate."""
    session = talking()
    first = feed(session, failed_mcp_call("item_m1"))
    assert records(first, "mcp_call")[0]["error"]["message"] == "CRM is down"
    assert escalated_by(first) is None
    listing = feed(session, event("mcp_list_tools.failed", item_id="mcpl_1"))
    assert records(listing, "mcp_list_tools_failed") == [{"item_id": "mcpl_1"}]
    assert escalated_by(listing) == "tool_failures"
