"""What the dashboard counts and how the console writes times, JSON and a call's timeline."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from callcenter.call.vocabulary import CallOutcome, CallStatus, DecisionKind, EventKind
from callcenter.operators.console_format import (
    OUTCOME_WORDS,
    day_start,
    duration,
    local_time,
    offset,
    pretty_json,
    zone_named,
)
from callcenter.operators.console_view import dashboard_view, timeline_entries
from callcenter.operators.stats import stats_json, summarize
from callcenter.store import CallEvent, CallRecord
from callcenter.store.operators import CallFacts

T0 = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
SERVED = CallFacts(
    received_at=T0 + timedelta(minutes=5),
    answered_at=T0 + timedelta(minutes=5),
    ended_at=T0 + timedelta(minutes=7),
    status=CallStatus.ENDED,
    decision=DecisionKind.ACCEPT,
    outcome=CallOutcome.COMPLETED,
    escalation_trigger=None,
    input_tokens=900,
    output_tokens=100,
)


def test_summarize_counts_containment_escalation_handle_time_and_tokens() -> None:
    """Of four served calls, two contained and one escalated; a reject is not served."""
    escalated = dataclasses.replace(
        SERVED, outcome=CallOutcome.TRANSFERRED, status=CallStatus.REFERRED,
        escalation_trigger="human", ended_at=SERVED.ended_at + timedelta(minutes=2),
        input_tokens=None, output_tokens=None,
    )  # fmt: skip
    by_agent = dataclasses.replace(SERVED, outcome=CallOutcome.ENDED_BY_AGENT)
    gone = dataclasses.replace(SERVED, outcome=CallOutcome.HUNG_UP_BY_CALLER)
    rejected = dataclasses.replace(
        SERVED, received_at=T0 + timedelta(hours=3), answered_at=T0 + timedelta(hours=3),
        status=CallStatus.REJECTED, decision=DecisionKind.REJECT, outcome=CallOutcome.REJECTED,
    )  # fmt: skip
    live = dataclasses.replace(
        SERVED, status=CallStatus.ACTIVE, outcome=CallOutcome.ACCEPTED, ended_at=None,
        escalation_trigger="keyword",
    )  # fmt: skip
    window = [SERVED, escalated, by_agent, gone, rejected, live]
    stats = summarize(window, [live], since=T0, until=T0 + timedelta(days=1))
    assert (stats.calls, stats.served, stats.live, stats.waiting_for_human) == (6, 4, 1, 1)
    assert (stats.containment_rate, stats.escalation_rate) == (0.5, 0.25)
    assert stats.average_handle_seconds == 150.0  # 2, 4, 2 and 2 minutes
    assert stats.tokens_per_call == 1000.0  # the escalated call recorded no usage
    assert stats.by_outcome["completed"] == 1
    assert stats.by_outcome["accepted"] == 1
    assert len(stats.per_hour) == 24
    assert [n for _, n in stats.per_hour[:4]] == [5, 0, 0, 1]
    assert stats.voice_latency is None
    assert stats_json(stats)["voice_latency"] is None


def test_an_empty_day_has_no_rates_and_latency_shows_once_measured() -> None:
    """Without calls the rates are None ("–"); the calls' turn waits give a median and a p95."""
    empty = dashboard_view(summarize([], [], since=T0, until=T0 + timedelta(hours=1)), UTC)
    assert isinstance(empty["figures"], dict)
    assert empty["figures"]["stat-containment"] == "–"
    assert empty["figures"]["stat-handle"] == "–"
    assert empty["figures"]["stat-latency"] == "not measured"
    measured = dataclasses.replace(SERVED, latency={"greeting_ms": 400, "turn_ms": [[300, 0]]})
    also = dataclasses.replace(SERVED, latency={"turn_ms": [[500.0, 120.0]]})
    stats = summarize([measured, also, SERVED], [], since=T0, until=T0 + timedelta(hours=2))
    figures = dashboard_view(stats, UTC)["figures"]
    assert isinstance(figures, dict)
    assert figures["stat-latency"] == "300 ms median, 500 ms p95"


def test_times_are_written_in_the_operators_zone() -> None:
    """A known zone formats and starts the day locally; an unknown one is UTC."""
    paris = zone_named("Europe/Paris")
    assert local_time(T0, paris) == "2026-12-02 01:00:00 CET"
    assert day_start(T0, paris) == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert zone_named("Mars/Olympus") is UTC
    assert zone_named("../../etc/passwd") is UTC
    assert local_time(T0, ZoneInfo("UTC")).endswith("UTC")


def test_offsets_durations_and_json_read_like_a_person_wrote_them() -> None:
    """Offsets from the start, durations, and JSON (a JSON string decoded) pretty-printed."""
    assert offset(T0, T0 + timedelta(seconds=65)) == "+1:05"
    assert offset(T0, T0 + timedelta(hours=1, seconds=3)) == "+1:00:03"
    assert (duration(12), duration(245), duration(3720), duration(None)) == (
        "12 s", "4 min 05 s", "1 h 02 min", "–",
    )  # fmt: skip
    assert pretty_json('{"order_id": "A1"}') == '{\n  "order_id": "A1"\n}'
    assert pretty_json("not json") == "not json"
    assert set(OUTCOME_WORDS) == set(CallOutcome)


def test_the_timeline_puts_tools_and_keys_among_lines_in_conversation_order() -> None:
    """Lines keep their conversation order; tool calls and keys fall between them by time."""
    call = CallRecord(
        call_id="rtc_1", webhook_id="wh", received_at=T0, caller_number=None, caller_uri=None,
        caller_name=None, dialled_number=None, dialled_uri=None, sip_headers=(),
        media_security=None, route="support", decision=DecisionKind.ACCEPT, decision_reason="r",
        reject_code=None, target=None, status=CallStatus.ACTIVE, outcome=CallOutcome.ACCEPTED,
        claimed_at=T0, decided_at=T0, answered_at=T0, ended_at=None, owner=None, error=None,
        updated_at=T0,
    )  # fmt: skip

    def at(seconds: int) -> datetime:
        return T0 + timedelta(seconds=seconds)

    lines = [
        CallEvent(1, "rtc_1", at(2), EventKind.TRANSCRIPT, {"speaker": "agent", "seq": 0}),
        CallEvent(3, "rtc_1", at(9), EventKind.TRANSCRIPT, {"speaker": "caller", "seq": 1}),
        CallEvent(2, "rtc_1", at(8), EventKind.TRANSCRIPT, {"speaker": "agent", "seq": 2}),
    ]
    tool = {"name": "lookup", "arguments": '{"id": 1}', "output": {"ok": True}, "ok": True}
    others = [
        CallEvent(4, "rtc_1", at(5), EventKind.DTMF, {"key": "1"}),
        CallEvent(5, "rtc_1", at(10), EventKind.TOOL, tool),
        CallEvent(6, "rtc_1", at(11), EventKind.RATE_LIMITS, {}),
    ]
    entries = timeline_entries(call, [*others, *lines], lines)
    assert [(e.row, e.offset) for e in entries] == [
        ("line", "+0:02"), ("key", "+0:05"), ("line", "+0:09"), ("line", "+0:08"),
        ("tool", "+0:10"),
    ]  # fmt: skip
    assert entries[-1].details == {"arguments": '{\n  "id": 1\n}', "result": '{\n  "ok": true\n}'}
