"""The dashboard's figures, from the facts of the calls of a time window. Pure.

A call is *served* when a route's agent answered it and it is over; of those, it is
*contained* when it ended without a human (completed, or ended by the agent, with no
escalation) and *escalated* when an escalation fired (whether or not a human took it). See
docs/vocabulary.md#dashboard-figures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from callcenter.call.vocabulary import LIVE_STATUSES, CallOutcome, DecisionKind
from callcenter.store.operators import CallFacts

__all__ = [
    "CONTAINED_OUTCOMES",
    "HOUR",
    "Latency",
    "Stats",
    "hour_starts",
    "stats_json",
    "summarize",
]

HOUR: Final = timedelta(hours=1)
CONTAINED_OUTCOMES: Final = frozenset({CallOutcome.COMPLETED, CallOutcome.ENDED_BY_AGENT})


@dataclass(frozen=True, slots=True)
class Latency:
    """Voice latency over the calls that measured it, in milliseconds."""

    calls: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class Stats:
    """What the dashboard shows of ``[since, until)``; a rate or mean is None without calls."""

    since: datetime
    until: datetime
    live: int  # calls ringing or active now, whenever they came in
    waiting_for_human: int  # live calls whose escalation is under way
    calls: int  # calls received in the window
    by_outcome: dict[str, int]  # outcome (or "deciding" while ringing) -> calls, busiest first
    served: int
    containment_rate: float | None
    escalation_rate: float | None
    average_handle_seconds: float | None  # answered to over, of the served calls
    tokens_per_call: float | None  # input + output, of the calls that recorded usage
    per_hour: tuple[tuple[datetime, int], ...]  # each hour's start and the calls received in it
    voice_latency: Latency | None  # None until latency is measured


def hour_starts(since: datetime, until: datetime) -> list[datetime]:
    """The start of every hour from ``since`` up to ``until``."""
    count = max(math.ceil((until - since) / HOUR), 0)
    return [since + n * HOUR for n in range(count)]


def summarize(
    window: Sequence[CallFacts],
    live: Sequence[CallFacts],
    *,
    since: datetime,
    until: datetime,
) -> Stats:
    """The figures of the calls received in ``[since, until)`` and of the live ones."""
    served = [f for f in window if _served(f)]
    contained = [f for f in served if f.escalation_trigger is None and _contained(f.outcome)]
    escalated = [f for f in served if f.escalation_trigger is not None]
    handle = [
        (f.ended_at - f.answered_at).total_seconds()
        for f in served
        if f.answered_at is not None and f.ended_at is not None
    ]
    tokens = [
        (f.input_tokens or 0) + (f.output_tokens or 0)
        for f in window
        if f.input_tokens is not None or f.output_tokens is not None
    ]
    hours = hour_starts(since, until)
    per_hour = Counter(int((f.received_at - since) / HOUR) for f in window)
    outcomes = Counter(f.outcome or "deciding" for f in window)
    return Stats(
        since=since,
        until=until,
        live=sum(1 for f in live if f.status in LIVE_STATUSES),
        waiting_for_human=sum(1 for f in live if f.escalation_trigger is not None),
        calls=len(window),
        by_outcome=dict(outcomes.most_common()),
        served=len(served),
        containment_rate=_share(len(contained), len(served)),
        escalation_rate=_share(len(escalated), len(served)),
        average_handle_seconds=_mean(handle),
        tokens_per_call=_mean(tokens),
        per_hour=tuple((start, per_hour.get(n, 0)) for n, start in enumerate(hours)),
        voice_latency=_latency([ms for f in window for ms in _turn_waits(f)]),
    )


def _turn_waits(facts: CallFacts) -> list[float]:
    """The caller's wait of each turn of a call, in ms (``calls.latency``'s ``turn_ms``)."""
    turns = (facts.latency or {}).get("turn_ms")
    if not isinstance(turns, list):
        return []
    return [float(turn[0]) for turn in turns if isinstance(turn, list | tuple) and turn]


def stats_json(stats: Stats) -> dict[str, object]:
    """The figures as the API answers them."""
    latency = stats.voice_latency
    return {
        "since": stats.since.isoformat(),
        "until": stats.until.isoformat(),
        "live": {"calls": stats.live, "waiting_for_human": stats.waiting_for_human},
        "calls": stats.calls,
        "by_outcome": stats.by_outcome,
        "served": stats.served,
        "containment_rate": stats.containment_rate,
        "escalation_rate": stats.escalation_rate,
        "average_handle_seconds": stats.average_handle_seconds,
        "tokens_per_call": stats.tokens_per_call,
        "per_hour": [{"hour": start.isoformat(), "calls": n} for start, n in stats.per_hour],
        "voice_latency": None
        if latency is None
        else {"calls": latency.calls, "p50_ms": latency.p50_ms, "p95_ms": latency.p95_ms},
    }


def _served(facts: CallFacts) -> bool:
    over = facts.status not in LIVE_STATUSES
    return over and facts.decision == DecisionKind.ACCEPT and facts.answered_at is not None


def _contained(outcome: str | None) -> bool:
    return outcome is not None and outcome in CONTAINED_OUTCOMES


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _mean(values: Sequence[float]) -> float | None:
    return None if not values else round(sum(values) / len(values), 1)


def _latency(samples: Sequence[float]) -> Latency | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return Latency(len(ordered), _percentile(ordered, 0.5), _percentile(ordered, 0.95))


def _percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted samples."""
    rank = max(math.ceil(share * len(ordered)), 1)
    return round(ordered[rank - 1], 1)
