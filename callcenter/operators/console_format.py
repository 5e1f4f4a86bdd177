"""How the console writes times, durations, JSON and outcomes for people. Pure.

Times are shown in the operator's time zone: the browser names it in the ``tz`` cookie
(see console.js) and the server formats with it, UTC until it is known; every time is also a
``<time datetime>`` element, which the browser reformats in its own zone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.call.vocabulary import CallOutcome

__all__ = [
    "OUTCOME_WORDS",
    "clock",
    "day_start",
    "duration",
    "local_time",
    "offset",
    "outcome_words",
    "percent",
    "pretty_json",
    "zone_named",
]

MAX_ZONE_NAME: Final = 64
OUTCOME_WORDS: Final[dict[CallOutcome, str]] = {
    CallOutcome.ACCEPTED: "In conversation with the agent",
    CallOutcome.TRANSFERRING: "Being transferred by its route",
    CallOutcome.REJECTED: "Rejected with a SIP status code",
    CallOutcome.REFERRED: "Transferred by its route to its target",
    CallOutcome.TRANSFERRED: "Escalated and handed to a human",
    CallOutcome.COMPLETED: "Completed: the caller hung up after being answered",
    CallOutcome.HUNG_UP_BY_CALLER: "The caller hung up before being served",
    CallOutcome.CALLER_GONE: "The caller hung up while it rang",
    CallOutcome.ENDED_BY_AGENT: "Ended by the agent",
    CallOutcome.ENDED_BY_OPERATOR: "Hung up by an operator",
    CallOutcome.TRANSFER_FAILED: "Hung up: no transfer target answered",
    CallOutcome.CONFLICT: "Answered elsewhere first",
    CallOutcome.FAILED: "Failed on our side or at OpenAI",
}


def zone_named(name: str | None) -> tzinfo:
    """The time zone the browser named, or UTC for none or one this machine does not know."""
    if not name or len(name) > MAX_ZONE_NAME:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_time(at: datetime | None, zone: tzinfo) -> str:
    """``2026-12-02 14:57:52 CET``: a time as the operator reads it; empty for None."""
    return "" if at is None else at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def clock(at: datetime, zone: tzinfo) -> str:
    """``14:57``: the hour and minute of ``at`` in ``zone``."""
    return at.astimezone(zone).strftime("%H:%M")


def day_start(at: datetime, zone: tzinfo) -> datetime:
    """Midnight of ``at``'s day in ``zone``, in UTC."""
    local = at.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    return midnight.astimezone(UTC)


def offset(start: datetime, at: datetime) -> str:
    """``+1:05``: how long after ``start`` something happened."""
    seconds = max(int((at - start).total_seconds()), 0)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"+{hours}:{minute:02d}:{second:02d}" if hours else f"+{minute}:{second:02d}"


def duration(seconds: float | timedelta | None) -> str:
    """``4 min 05 s``, ``1 h 02 min`` or ``12 s``; ``–`` when unknown."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if seconds is None:
        return "–"
    whole = max(round(seconds), 0)
    minutes, second = divmod(whole, 60)
    hours, minute = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minute:02d} min"
    return f"{minute} min {second:02d} s" if minute else f"{second} s"


def percent(share: float | None) -> str:
    """``37 %`` of a share from 0 to 1; ``–`` when there is nothing to share."""
    return "–" if share is None else f"{share * 100:.0f} %"


def outcome_words(outcome: str | None) -> str:
    """The outcome as a sentence; "Ringing, being decided" for a call without one yet."""
    if outcome is None:
        return "Ringing, being decided"
    try:
        return OUTCOME_WORDS[CallOutcome(outcome)]
    except ValueError:
        return outcome


def pretty_json(value: object) -> str:
    """Indented JSON of a value; a string holding JSON (tool arguments) is decoded first."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False)
