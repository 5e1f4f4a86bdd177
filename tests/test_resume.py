"""Resuming a call in another process: the resume state, the restored session, the backoff."""

from __future__ import annotations

import json

from callcenter.call.actions import (
    ControlDone,
    Finish,
    HangUpCall,
    Record,
    ReferCall,
    RunTool,
    Send,
    SetTimer,
    SocketClosed,
    TimerFired,
    ToolDone,
)
from callcenter.call.escalation import TransferTarget, ticket_for
from callcenter.call.reattach import ReattachPolicy
from callcenter.call.resume import INTERRUPTED, ResumeState
from callcenter.call.session import CallSession
from callcenter.call.vocabulary import CallOutcome
from callcenter.tools.run import ToolResult
from tests.test_sideband_session import (
    CALL_ID,
    agent_message,
    creates,
    done,
    event,
    feed,
    function_call,
    heard,
    new_session,
    sends,
    talking,
    user_item,
)


def moved(session: CallSession, elapsed: float = 5.0) -> tuple[CallSession, list[object]]:
    """A new session in "another process", restored from ``session``'s state through JSON."""
    data = json.loads(json.dumps(session.resume_state().as_data()))
    state = ResumeState.from_data(data)
    assert state is not None
    taker = new_session(greeting=state.greeting)
    return taker, list(taker.resume(state, elapsed))


def test_resume_state_survives_json() -> None:
    """A resume state read back from its JSON equals the one written."""
    chain = (TransferTarget("sip:a@b", "desk", ticket_header=True),)
    state = ResumeState("support", transfer_to=chain, pending={"item_1": 3}, keys=7)
    assert ResumeState.from_data(json.loads(json.dumps(state.as_data()))) == state


def test_an_unreadable_resume_state_is_none() -> None:
    """Missing or malformed state reads as None (the taker starts from the call's row)."""
    assert ResumeState.from_data(None) is None
    assert ResumeState.from_data({"attaches": 1}) is None
    assert ResumeState.from_data({"route": "x", "attaches": "many"}) is None


def test_a_resumed_call_is_not_greeted_again() -> None:
    """After a takeover the new sideband's session.created brings no second greeting."""
    taker, first = moved(talking())
    actions = feed(taker, event("session.created", session={"type": "realtime"}))
    assert not sends(list(first) + actions, "response.create")  # type: ignore[arg-type]
    assert any(isinstance(a, Record) and a.kind == "sideband_reattached" for a in actions)


def test_a_call_never_greeted_is_greeted_on_takeover() -> None:
    """A call taken over before its first session.created still gets its greeting."""
    taker, _ = moved(new_session(greeting="Hello, Acme."))
    actions = feed(taker, event("session.created", session={"type": "realtime"}))
    assert len(sends(actions, "response.create")) == 1


def test_transcript_positions_go_on_after_a_takeover() -> None:
    """Lines said after a takeover continue the numbering; a pending item keeps its place."""
    session = talking()
    feed(
        session,
        user_item("item_a"),
        heard("item_a", "I need help"),
        done("resp_1", output=[agent_message("item_b", "Sure.")]),
        user_item("item_c"),  # placed; its transcription is still running
    )
    taker, _ = moved(session)
    lines = feed(taker, heard("item_c", "Order 42"), user_item("item_d"), heard("item_d", "Hi"))
    seqs = [a.data["seq"] for a in lines if isinstance(a, Record) and a.kind == "transcript"]
    assert seqs == [3, 4]


def test_a_running_tool_is_answered_as_interrupted() -> None:
    """A tool cut off by the takeover gets a failure output, then the model goes on."""
    session = talking()
    started = feed(session, function_call("resp_t", "fc_1", "lookup_order", {"order_id": "42"}))
    assert any(isinstance(a, RunTool) for a in started)
    feed(session, done("resp_t"))
    _, first = moved(session)
    outputs = [
        a.event["item"]
        for a in first
        if isinstance(a, Send) and a.event["type"] == "conversation.item.create"
    ]
    assert outputs == [
        {
            "type": "function_call_output",
            "call_id": "fc_1",
            "output": json.dumps({"error": INTERRUPTED}),
        }
    ]
    assert sends(first, "response.create")  # type: ignore[arg-type]


def test_escalation_counters_survive_a_takeover() -> None:
    """One failed tool before the takeover and one after reach max_tool_failures = 2."""
    session = talking()
    feed(session, function_call("resp_1", "fc_1", "lookup_order", {"order_id": "1"}))
    feed(session, done("resp_1"))
    failed = ToolResult(False, '{"error": "down"}', "down", 0.01)
    feed(session, ToolDone("fc_1", failed))
    taker, _ = moved(session)
    feed(taker, event("session.created", session={"type": "realtime"}))
    feed(taker, function_call("resp_2", "fc_2", "lookup_order", {"order_id": "2"}))
    actions = feed(taker, done("resp_2"), ToolDone("fc_2", failed))
    assert taker.phase == "handing_off"
    assert any(isinstance(a, Record) and a.kind == "escalation" for a in actions)


def test_a_tool_cut_off_by_the_takeover_can_be_the_failure_that_escalates() -> None:
    """One failed tool, then one interrupted by the takeover: max_tool_failures = 2 is
    reached on resume, and the call is handed to a human instead of asked to go on."""
    session = talking()
    feed(session, function_call("resp_1", "fc_1", "lookup_order", {"order_id": "1"}))
    feed(session, done("resp_1"))
    feed(session, ToolDone("fc_1", ToolResult(False, '{"error": "down"}', "down", 0.01)))
    feed(session, function_call("resp_2", "fc_2", "lookup_order", {"order_id": "2"}))
    feed(session, done("resp_2"))  # fc_2 still running when the process dies
    taker, first = moved(session)
    assert taker.phase == "handing_off"
    assert any(isinstance(a, Record) and a.kind == "escalation" for a in first)


def test_the_max_length_timer_runs_on_from_the_answer() -> None:
    """A route's max_minutes counts from the answer, not from the takeover."""
    _, first = moved(talking(), elapsed=45.0)
    timers = [a for a in first if isinstance(a, SetTimer) and a.name == "max_length"]
    assert timers == [SetTimer("max_length", 15.0)]


def test_the_resume_state_names_the_call() -> None:
    """The state carries the call's route and lines, so a taker needs no other source."""
    state = new_session(greeting="Hello, Acme.", handoff="One moment.").resume_state()
    assert (state.route, state.greeting, state.handoff) == (
        "support",
        "Hello, Acme.",
        "One moment.",
    )
    assert CALL_ID not in json.dumps(state.as_data())  # the call_id is the lease's key


def test_reattach_backoff_doubles_to_its_ceiling() -> None:
    """The wait doubles after each failed attach, up to the ceiling."""
    policy = ReattachPolicy(window=30.0, first_delay=0.25, max_delay=1.0)
    assert [policy.next_delay(n, 1.0) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 1.0, 1.0]


def test_reattach_gives_up_after_its_window() -> None:
    """Past the window the policy gives up: the call is lost."""
    policy = ReattachPolicy(window=5.0)
    assert policy.next_delay(1, 4.9) is not None
    assert policy.next_delay(1, 5.0) is None


def test_a_handoff_cut_short_starts_again_after_a_takeover() -> None:
    """A call taken over mid-handoff is handed off again: same ticket, same target."""
    session = talking()
    feed(session, user_item("item_a"), heard("item_a", "Can I talk to a human?"))
    assert session.phase == "handing_off"
    taker, first = moved(session)
    [escalation] = [a for a in first if isinstance(a, Record) and a.kind == "escalation"]
    assert escalation.data["target"] == "desk"
    assert escalation.data["ticket"] == ticket_for(CALL_ID, 1)
    assert taker.phase == "handing_off"


def test_an_ending_cut_short_hangs_up_after_a_takeover() -> None:
    """A call taken over while saying goodbye is hung up at once, with its outcome."""
    session = talking()
    feed(session, function_call("resp_e", "fc_e", "end_call", {"reason": "done"}))
    assert session.phase == "ending"
    _, first = moved(session)
    assert any(isinstance(a, HangUpCall) for a in first)


def test_a_relayed_transfer_waits_on_after_a_takeover() -> None:
    """Taken over while the desk rings: no second REFER; the answer timer is armed again."""
    session = talking()
    summary, line = creates(feed(session, heard("item_1", "a human please")))
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    (refer,) = [
        a
        for a in feed(session, TimerFired(line["metadata"]["callcenter"]))
        if isinstance(a, ReferCall)
    ]
    feed(session, ControlDone("refer", refer.uri))
    taker, first = moved(session)
    assert not any(isinstance(a, ReferCall) for a in first)
    assert [
        a.seconds for a in first if isinstance(a, SetTimer) and a.name.startswith("answer")
    ] == [20]
    assert taker.phase == "transferring"
    over = taker.feed(SocketClosed(), 1.0)
    assert [a.outcome for a in over if isinstance(a, Finish)] == [CallOutcome.TRANSFERRED]


def test_a_transfer_taken_over_goes_on_at_the_target_it_reached() -> None:
    """The desk refused before the takeover: the new process REFERs to the backup, not the desk."""
    session = talking()
    summary, line = creates(feed(session, heard("item_1", "a human please")))
    feed(session, TimerFired(summary["metadata"]["callcenter"]))
    (refer,) = [
        a
        for a in feed(session, TimerFired(line["metadata"]["callcenter"]))
        if isinstance(a, ReferCall)
    ]
    feed(session, ControlDone("refer", refer.uri, 403, "forbidden"))
    _, first = moved(session)
    assert [a for a in first if isinstance(a, ReferCall)] == [
        ReferCall("sip:backup@pbx.example.com")
    ]
