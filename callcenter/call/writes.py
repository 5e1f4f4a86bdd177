"""The store writes a live call makes, as plain data: applied to the store, kept as JSON lines.

A write is data rather than a closure so that the recorder can keep it through an outage
(in memory, then in a spill file) and apply it later, maybe in another process. Every write
is idempotent, because a replay after a crash may repeat one the store already took: an
event carries its ``place`` (unique in the store; a second copy is ignored), and the others
are state transitions (``Ended`` of a call already over is a no-op) or set values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

import pydantic

from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.store import NewEvent

__all__ = [
    "Answered",
    "CallStore",
    "Ended",
    "Entry",
    "Event",
    "Handoff",
    "Latency",
    "Mark",
    "Usage",
    "Write",
    "apply",
    "apply_events",
    "from_line",
    "to_line",
]


class CallStore(Protocol):
    """What calls record (a subset of :class:`callcenter.store.Store`)."""

    def mark_answered(self, call_id: str, *, outcome: CallOutcome, at: datetime) -> None: ...

    def record_outcome(
        self,
        call_id: str,
        *,
        outcome: CallOutcome,
        at: datetime,
        target: str | None = None,
        error: str | None = None,
    ) -> None: ...

    def add_events(self, events: list[NewEvent]) -> None: ...

    def record_handoff(
        self, call_id: str, *, ticket: str, trigger: str, summary: str | None, at: datetime
    ) -> None: ...

    def record_usage(
        self, call_id: str, usage: dict[str, int | float], *, at: datetime
    ) -> None: ...

    def record_latency(self, call_id: str, latency: dict[str, Any], *, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class Event:
    """An event of the call's history; ``place`` names it uniquely (recorder id and number)."""

    call_id: str
    kind: EventKind
    data: dict[str, Any]
    at: datetime
    place: str
    op: Literal["event"] = field(default="event", repr=False)


@dataclass(frozen=True, slots=True)
class Answered:
    """The ringing call was answered with a live outcome: ``Store.mark_answered``."""

    call_id: str
    outcome: CallOutcome
    at: datetime
    op: Literal["answered"] = field(default="answered", repr=False)


@dataclass(frozen=True, slots=True)
class Ended:
    """The call is over with ``outcome``, maybe its target or error: ``Store.record_outcome``."""

    call_id: str
    outcome: CallOutcome
    at: datetime
    target: str | None = None
    error: str | None = None
    op: Literal["ended"] = field(default="ended", repr=False)


@dataclass(frozen=True, slots=True)
class Handoff:
    """An escalation's ticket, trigger and summary: ``Store.record_handoff``."""

    call_id: str
    ticket: str
    trigger: str
    summary: str | None
    at: datetime
    op: Literal["handoff"] = field(default="handoff", repr=False)


@dataclass(frozen=True, slots=True)
class Usage:
    """The call's usage totals: ``Store.record_usage``."""

    call_id: str
    usage: dict[str, int | float]
    at: datetime
    op: Literal["usage"] = field(default="usage", repr=False)


@dataclass(frozen=True, slots=True)
class Latency:
    """The caller's waits (see ``callcenter.call.latency``): ``Store.record_latency``."""

    call_id: str
    latency: dict[str, Any]
    at: datetime
    op: Literal["latency"] = field(default="latency", repr=False)


Write = Event | Answered | Ended | Handoff | Usage | Latency


@dataclass(frozen=True, slots=True)
class Mark:
    """Not a write: a place in the recorder's sequence that someone waits to see passed."""

    name: str
    op: Literal["mark"] = field(default="mark", repr=False)


Entry = Write | Mark

_LINE: pydantic.TypeAdapter[Entry] = pydantic.TypeAdapter(
    Annotated[Entry, pydantic.Field(discriminator="op")]
)


def to_line(entry: Entry) -> str:
    """The entry as one JSON line (without the newline)."""
    return _LINE.dump_json(entry).decode()


def from_line(line: str) -> Entry:
    """The entry a JSON line holds; ``pydantic.ValidationError`` if it holds none."""
    return _LINE.validate_json(line)


def apply_events(store: CallStore, events: list[Event]) -> None:
    """Append events, in order, in one transaction."""
    store.add_events([NewEvent(e.call_id, e.kind, e.data, e.at, e.place) for e in events])


def apply(store: CallStore, write: Write) -> None:
    """Make the one write."""
    match write:
        case Event():
            apply_events(store, [write])
        case Answered():
            store.mark_answered(write.call_id, outcome=write.outcome, at=write.at)
        case Ended():
            store.record_outcome(
                write.call_id,
                outcome=write.outcome,
                at=write.at,
                target=write.target,
                error=write.error,
            )
        case Handoff():
            store.record_handoff(
                write.call_id,
                ticket=write.ticket,
                trigger=write.trigger,
                summary=write.summary,
                at=write.at,
            )
        case Usage():
            store.record_usage(write.call_id, write.usage, at=write.at)
        case Latency():
            store.record_latency(write.call_id, write.latency, at=write.at)
