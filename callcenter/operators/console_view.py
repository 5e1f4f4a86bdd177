"""What the console's dashboard and call page show, built from store records. Pure.

The call page is one timeline: transcript lines, tool calls, keys, escalations, transfer
attempts and operator actions in the order they happened, each with its time from the start
of the call. The dashboard's figures are strings ready to show, sent again over the live
stream as they change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final

from callcenter.call.vocabulary import EventKind
from callcenter.operators.console_format import (
    clock,
    duration,
    offset,
    outcome_words,
    percent,
    pretty_json,
)
from callcenter.operators.stats import Stats
from callcenter.store import CallEvent, CallRecord

__all__ = ["CHART", "Entry", "dashboard_view", "timeline_entries"]

# The kinds of event the timeline shows, by the row they make.
ROW_OF: Final[dict[str, str]] = {
    EventKind.TRANSCRIPT: "line",
    EventKind.TOOL: "tool",
    EventKind.MCP_CALL: "tool",
    EventKind.MCP_APPROVAL: "tool",
    EventKind.MCP_LIST_TOOLS_FAILED: "tool",
    EventKind.DTMF: "key",
    EventKind.ESCALATION: "escalation",
    EventKind.ESCALATION_UNAVAILABLE: "escalation",
    EventKind.HANDOFF_ABANDONED: "escalation",
    EventKind.TRANSFERRED: "transfer",
    EventKind.REFER_FAILED: "transfer",
    EventKind.TRANSFER_UNANSWERED: "transfer",
    EventKind.TRANSFER_FAILED: "transfer",
    EventKind.OPERATOR_INSTRUCTION: "operator",
    EventKind.OPERATOR_INSTRUCTION_IGNORED: "operator",
    EventKind.ENDING: "ending",
    EventKind.SILENCE: "note",
    EventKind.ERROR: "note",
    EventKind.SIDEBAND_DROPPED: "note",
    EventKind.SIDEBAND_REATTACHED: "note",
    EventKind.TAKEN_OVER: "note",
    EventKind.HANGUP_FAILED: "note",
}


@dataclass(frozen=True, slots=True)
class Chart:
    """The calls-per-hour chart's geometry (an SVG viewBox of ``width`` by ``height``)."""

    bar: int = 20
    gap: int = 4
    height: int = 120
    label: int = 16  # the band under the bars for the hour labels


CHART: Final = Chart()


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a call's timeline."""

    row: str  # line | tool | key | escalation | transfer | operator | ending | note
    kind: str  # the event's kind
    offset: str  # "+0:12" from the call's start
    at: datetime
    data: dict[str, object]
    details: dict[str, str] = field(default_factory=dict)  # titled pretty-printed JSON


def timeline_entries(
    call: CallRecord, events: Sequence[CallEvent], transcript: Sequence[CallEvent]
) -> list[Entry]:
    """The call's rows, transcript lines in conversation order among the other events."""
    start = call.received_at
    rows: list[tuple[datetime, int, Entry]] = []
    latest = start  # a caller's line can be stored after the answer to it: keep their order
    for n, line in enumerate(transcript):
        latest = max(latest, line.at)
        entry = Entry("line", line.kind, offset(start, line.at), line.at, dict(line.data))
        rows.append((latest, n, entry))
    for event in events:
        row = ROW_OF.get(event.kind)
        if row is None or row == "line":
            continue
        entry = Entry(
            row, event.kind, offset(start, event.at), event.at, dict(event.data), _details(event)
        )
        rows.append((event.at, len(rows), entry))
    rows.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in rows]


def _details(event: CallEvent) -> dict[str, str]:
    """A tool call's arguments, result and (an MCP server's structured) error, pretty-printed."""
    data = event.data
    if ROW_OF[event.kind] != "tool":
        return {}
    error = data.get("error")
    shown = {
        "arguments": data.get("arguments"),
        "result": data.get("output"),
        "error": error if isinstance(error, dict) else None,
    }
    return {title: pretty_json(value) for title, value in shown.items() if value is not None}


def dashboard_view(stats: Stats, zone: tzinfo) -> dict[str, object]:
    """The dashboard's figures as shown, its outcome rows and its chart's bars."""
    latency = stats.voice_latency
    figures = {
        "stat-live": str(stats.live),
        "stat-waiting": str(stats.waiting_for_human),
        "stat-calls": str(stats.calls),
        "stat-containment": percent(stats.containment_rate),
        "stat-escalation": percent(stats.escalation_rate),
        "stat-handle": duration(stats.average_handle_seconds),
        "stat-tokens": "–" if stats.tokens_per_call is None else f"{stats.tokens_per_call:,.0f}",
        "stat-latency": "not measured"
        if latency is None
        else f"{latency.p50_ms:.0f} ms median, {latency.p95_ms:.0f} ms p95",
    }
    outcomes = [
        {"outcome": outcome, "words": outcome_words(None if outcome == "deciding" else outcome),
         "calls": count}
        for outcome, count in stats.by_outcome.items()
    ]  # fmt: skip
    return {"figures": figures, "outcomes": outcomes, "bars": _bars(stats, zone)}


def _bars(stats: Stats, zone: tzinfo) -> list[dict[str, object]]:
    most = max((count for _, count in stats.per_hour), default=0) or 1
    chart = CHART
    bars: list[dict[str, object]] = []
    for n, (start, count) in enumerate(stats.per_hour):
        height = round(chart.height * count / most)
        bars.append(
            {
                "x": n * (chart.bar + chart.gap),
                "y": chart.height - height,
                "height": height,
                "calls": count,
                "hour": clock(start, zone),
            }
        )
    return bars
