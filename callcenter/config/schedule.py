"""Parse business-hours strings like ``"mon-fri 09:00-12:00, 13:00-17:00"`` into weekly windows.

``DAYS`` is ``daily``, a day (``sat``, ``saturday``), a range (``mon-fri``, ``fri-mon`` wraps)
or a comma list of those. A window whose end is before its start crosses midnight and
belongs to its start day; ``24:00`` is allowed as an end.
"""

from __future__ import annotations

import re

from callcenter.config.model import OpenWindow
from callcenter.config.reader import quoted

__all__ = ["parse_open"]

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {name: number for number, day in enumerate(_DAYS) for name in (day, day[:3])}
_SPEC_RE = re.compile(r"\s*([A-Za-z][A-Za-z,\s-]*?)\s+([0-9].*)", re.DOTALL)
_RANGE_RE = re.compile(r"\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*")
_EXAMPLE = '"mon-fri 09:00-17:00"'


def parse_open(spec: str) -> tuple[OpenWindow, ...]:
    """The windows ``spec`` opens; ValueError with a readable reason if it is malformed."""
    match = _SPEC_RE.fullmatch(spec)
    if match is None:
        raise ValueError(f"{quoted(spec)} should read like {_EXAMPLE}")
    days = _parse_days(match.group(1))
    ranges = [_parse_range(text) for text in match.group(2).split(",")]
    return tuple(OpenWindow(day, start, end) for day in days for start, end in ranges)


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.lower().split(","):
        first, dash, last = (piece.strip() for piece in part.partition("-"))
        if part.strip() == "daily":
            days.extend(range(7))
        elif not dash:
            days.append(_day(first))
        else:
            start, end = _day(first), _day(last)
            days.extend((start + offset) % 7 for offset in range((end - start) % 7 + 1))
    return sorted(set(days))


def _day(name: str) -> int:
    number = _DAY_NUMBERS.get(name)
    if number is None:
        raise ValueError(
            f"{quoted(name)} is not a day (mon, tue, wed, thu, fri, sat, sun or daily)"
        )
    return number


def _parse_range(text: str) -> tuple[int, int]:
    match = _RANGE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{quoted(text.strip())} should be a time range like 09:00-17:00")
    start_hour, start_minute, end_hour, end_minute = (int(group) for group in match.groups())
    if start_hour > 23 or start_minute > 59:
        raise ValueError(f"{quoted(text.strip())}: the start is not a time of day")
    if end_minute > 59 or end_hour > 24 or (end_hour == 24 and end_minute):
        raise ValueError(
            f"{quoted(text.strip())}: the end is not a time of day (24:00 is the latest)"
        )
    start, end = start_hour * 60 + start_minute, end_hour * 60 + end_minute
    if start == end:
        raise ValueError(f"{quoted(text.strip())} is empty (use 00:00-24:00 for a whole day)")
    return start, end if end > start else end + 1440
