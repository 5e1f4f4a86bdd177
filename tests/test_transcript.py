"""A long call's transcript keeps what it must and forgets what it has written."""

from __future__ import annotations

from openai.types.realtime import ConversationItem
from pydantic import TypeAdapter

from callcenter.call.transcript import WRITTEN_KEPT, Transcript
from callcenter.emulator import events

ITEM: TypeAdapter[ConversationItem] = TypeAdapter(ConversationItem)


def heard(item_id: str) -> ConversationItem:
    return ITEM.validate_python(events.user_audio_item(item_id))


def said(item_id: str) -> ConversationItem:
    return ITEM.validate_python(events.assistant_item(item_id, "completed", "ok", audio=True))


def converse(transcript: Transcript, turns: int) -> None:
    """``turns`` caller and agent lines, each item seen twice (added, then done)."""
    for turn in range(turns):
        caller, agent = f"item_u{turn}", f"item_a{turn}"
        transcript.item_added(heard(caller))
        transcript.item_added(heard(caller))
        assert transcript.caller_said(caller, f"question {turn}") is not None
        transcript.item_added(said(agent))
        transcript.item_added(said(agent))
        assert transcript.agent_said(agent, f"answer {turn}", interrupted=False) is not None


def test_written_lines_leave_nothing_pending_over_a_long_call() -> None:
    """After 200 turns nothing is pending, and the written ids remembered are the last few."""
    transcript = Transcript()
    converse(transcript, 200)
    last, pending, lines = transcript.state()
    assert (last, pending, lines) == (400, {}, 400)
    assert "item_a199" in transcript
    assert "item_u0" not in transcript


def test_a_late_event_of_a_recent_line_is_not_placed_again() -> None:
    """A late item.done of one of the last lines neither moves the positions nor writes twice."""
    transcript = Transcript()
    converse(transcript, WRITTEN_KEPT)
    recent = f"item_u{WRITTEN_KEPT // 2 + 1}"
    assert transcript.item_added(heard(recent)) is False
    assert transcript.caller_said(recent, "again") is None
    assert transcript.state() == (2 * WRITTEN_KEPT, {}, 2 * WRITTEN_KEPT)


def test_an_item_waiting_for_its_words_is_carried_in_the_state() -> None:
    """A caller's turn placed but not transcribed yet is pending, at its position."""
    transcript = Transcript()
    converse(transcript, 3)
    transcript.item_added(heard("item_late"))
    transcript.item_added(said("item_next"))
    assert transcript.state() == (8, {"item_late": 7, "item_next": 8}, 6)
    line = transcript.caller_said("item_late", "hello")
    assert line is not None
    assert line.seq == 7
