"""The latency tracker's rules, with events in and waits out (no network, no clock)."""

from __future__ import annotations

from typing import Any

from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from callcenter.call.latency import LatencyTracker, Measured, Turn, latency_summary
from callcenter.call.resume import ResumeState

_EVENTS: TypeAdapter[RealtimeServerEvent] = TypeAdapter(RealtimeServerEvent)


def event(kind: str, **fields: Any) -> RealtimeServerEvent:
    """A server event, validated as the SDK's type."""
    return _EVENTS.validate_python({"type": kind, "event_id": "event_1", **fields})


def created(rid: str, key: str | None = None) -> RealtimeServerEvent:
    metadata = {"callcenter": key} if key else None
    return event("response.created", response={"id": rid, "metadata": metadata})


def done(rid: str, status: str = "completed") -> RealtimeServerEvent:
    return event("response.done", response={"id": rid, "status": status})


def started(rid: str) -> RealtimeServerEvent:
    return event("output_audio_buffer.started", response_id=rid)


def delta(rid: str) -> RealtimeServerEvent:
    fields = {"item_id": "item_a", "output_index": 0, "content_index": 0, "delta": "AAAA"}
    return event("response.output_audio.delta", response_id=rid, **fields)


def speech_started() -> RealtimeServerEvent:
    return event("input_audio_buffer.speech_started", item_id="item_u", audio_start_ms=0)


def speech_stopped() -> RealtimeServerEvent:
    return event("input_audio_buffer.speech_stopped", item_id="item_u", audio_end_ms=0)


def play(tracker: LatencyTracker, *timeline: tuple[float, RealtimeServerEvent]) -> list[Measured]:
    """Feed events at their arrival times; every wait they ended."""
    measured: list[Measured] = []
    for at, item in timeline:
        measured += tracker.event(item, at)
    return measured


def test_the_greeting_runs_from_the_accept_to_its_playback() -> None:
    """Time to greeting: the accept sent to the greeting response's output_audio_buffer.started."""
    tracker = LatencyTracker(accepted_at=100.0)
    measured = play(tracker, (100.2, created("resp_g", "greeting")), (100.45, started("resp_g")))
    assert tracker.greeting_ms == 450.0
    assert [m.kind for m in measured] == ["greeting"]
    assert abs(measured[0].seconds - 0.45) < 1e-9


def test_a_call_without_greeting_measures_none_and_still_its_turns() -> None:
    """No greeting: greeting_ms stays null; the caller's first turn is a turn."""
    tracker = LatencyTracker(accepted_at=100.0)
    play(
        tracker,
        (101.0, speech_stopped()),
        (101.1, created("resp_1", "followup-1")),
        (101.6, started("resp_1")),
    )
    tracker.finish()
    assert tracker.greeting_ms is None
    assert tracker.turns == [Turn(600.0, 0.0)]


def test_a_turn_that_waited_on_a_tool_keeps_the_tool_time_apart() -> None:
    """Speech stopped → audio with a tool run inside: the wait, and the tool's part of it."""
    tracker = LatencyTracker()
    play(tracker, (10.0, speech_stopped()), (10.1, created("resp_fc")), (10.2, done("resp_fc")))
    tracker.tool_started("call_1", 10.2)
    tracker.tool_finished("call_1", 10.7)
    play(tracker, (10.75, created("resp_2", "followup-2")), (11.0, started("resp_2")))
    assert tracker.turns == [Turn(1000.0, 500.0)]
    assert latency_summary(tracker.as_data())["model_p50_ms"] == 500.0


def test_tools_running_together_count_once_and_only_inside_the_turn() -> None:
    """Two tools at once count as one span; tool time before the turn began is not in it."""
    tracker = LatencyTracker()
    tracker.tool_started("call_0", 9.0)
    play(tracker, (10.0, speech_stopped()))
    tracker.tool_started("call_1", 10.1)
    tracker.tool_finished("call_0", 10.3)
    tracker.tool_finished("call_1", 10.5)
    play(tracker, (11.0, started("resp_2")))
    assert tracker.turns == [Turn(1000.0, 500.0)]


def test_a_barge_in_measures_the_new_turn_to_the_answer_it_got() -> None:
    """The caller interrupts the greeting: their turn runs to the next response's playback."""
    tracker = LatencyTracker(accepted_at=0.0)
    play(
        tracker,
        (0.1, created("resp_g", "greeting")),
        (0.4, started("resp_g")),
        (1.0, speech_started()),
        (1.01, event("output_audio_buffer.cleared", response_id="resp_g")),
        (1.02, done("resp_g", "cancelled")),
        (2.0, speech_stopped()),
        (2.1, created("resp_2")),
        (2.7, started("resp_2")),
    )
    assert tracker.greeting_ms == 400.0
    assert tracker.turns == [Turn(700.0, 0.0)]


def test_a_greeting_cut_short_before_its_audio_is_not_measured() -> None:
    """The caller speaks over a greeting that never played: no greeting_ms."""
    tracker = LatencyTracker(accepted_at=0.0)
    play(
        tracker,
        (0.1, created("resp_g", "greeting")),
        (0.2, speech_started()),
        (0.3, done("resp_g", "cancelled")),
        (1.0, speech_stopped()),
        (1.5, started("resp_2")),
    )
    assert tracker.greeting_ms is None
    assert tracker.turns == [Turn(500.0, 0.0)]


def test_speaking_again_before_hearing_anything_restarts_the_wait() -> None:
    """speech_started during a turn drops it: the wait counts from the last speech_stopped."""
    tracker = LatencyTracker()
    play(
        tracker,
        (1.0, speech_stopped()),
        (1.5, speech_started()),
        (3.0, speech_stopped()),
        (3.4, started("resp_1")),
    )
    assert tracker.turns == [Turn(400.0, 0.0)]


def test_a_turn_without_audio_is_not_counted() -> None:
    """A reply with no audio, then the caller speaks or the call ends: no turn measured."""
    tracker = LatencyTracker()
    play(
        tracker,
        (1.0, speech_stopped()),
        (1.1, created("resp_1")),
        (1.3, done("resp_1")),
        (2.0, speech_started()),
        (3.0, speech_stopped()),
    )
    assert tracker.finish() == []
    assert tracker.turns == []
    assert latency_summary(tracker.as_data())["turns"] == 0


def test_without_playback_events_the_first_audio_delta_ends_the_wait() -> None:
    """No output_audio_buffer.started (a WebSocket session): the first delta is the audio."""
    tracker = LatencyTracker(accepted_at=0.0)
    play(
        tracker,
        (0.1, created("resp_g", "greeting")),
        (0.3, delta("resp_g")),
        (0.5, delta("resp_g")),
        (0.9, done("resp_g")),
        (2.0, speech_stopped()),
        (2.6, delta("resp_2")),
        (2.8, delta("resp_2")),
    )
    assert tracker.greeting_ms == 300.0
    tracker.finish()
    assert tracker.turns == [Turn(600.0, 0.0)]


def test_a_playback_start_outranks_an_earlier_delta() -> None:
    """Where both come, the wait ends at the playback start, not the delta before it."""
    tracker = LatencyTracker()
    play(
        tracker,
        (1.0, speech_stopped()),
        (1.3, delta("resp_1")),
        (1.45, started("resp_1")),
        (1.5, done("resp_1")),
    )
    assert tracker.turns == [Turn(450.0, 0.0)]


def test_the_summary_gives_nearest_rank_percentiles_and_nulls() -> None:
    """p50/p90/max are measured turns; no turns and no greeting give nulls."""
    data = {"greeting_ms": 420.0, "turn_ms": [[float(ms), 0.0] for ms in range(100, 1100, 100)]}
    summary = latency_summary(data)
    assert summary["greeting_ms"] == 420.0
    assert summary["turns"] == 10
    assert (summary["turn_p50_ms"], summary["turn_p90_ms"], summary["turn_max_ms"]) == (
        500.0,
        900.0,
        1000.0,
    )
    assert summary["tool_ms"] == 0.0
    empty = latency_summary(None)
    assert empty["greeting_ms"] is None
    assert empty["turns"] == 0
    assert empty["turn_p50_ms"] is None


def test_the_waits_go_on_in_the_process_that_takes_the_call_over() -> None:
    """Restored from the resume state, a tracker keeps the waits measured and adds new ones."""
    tracker = LatencyTracker(accepted_at=0.0)
    play(
        tracker,
        (0.1, created("resp_g", "greeting")),
        (0.5, started("resp_g")),
        (2.0, speech_stopped()),
        (2.6, started("resp_1")),
    )
    state = ResumeState.from_data(ResumeState("support", latency=tracker.as_data()).as_data())
    assert state is not None
    restored = LatencyTracker.restored(state.latency)
    play(restored, (9.0, speech_stopped()), (9.7, started("resp_2")))
    assert restored.greeting_ms == 500.0
    assert restored.turns == [Turn(600.0, 0.0), Turn(700.0, 0.0)]
