"""What a call's session needs to go on in another process: its resume state. Pure.

The holder of a call writes this small JSON beside its lease whenever it changes
(:mod:`callcenter.call.leases`); a worker that takes the call over reads it back and
restores a new :class:`~callcenter.call.session.CallSession` from it, so that the call
goes on as the same session: no second greeting, transcript positions that continue,
escalation counters kept, and tool calls that were running answered to the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pydantic

from callcenter.call.escalation import TransferTarget

__all__ = ["INTERRUPTED", "ResumeState"]

INTERRUPTED: Final = "the tool was interrupted"  # the output of a tool cut off by a takeover


@dataclass(frozen=True, slots=True)
class ResumeState:
    """A snapshot of one call's session; ``as_data`` and ``from_data`` carry it as JSON."""

    route: str | None
    greeting: str | None = None
    handoff: str | None = None
    transfer_to: tuple[TransferTarget, ...] = ()
    attaches: int = 0  # sidebands that said session.created: 0 means never greeted
    keys: int = 0  # the session's counter of keys and event ids
    answered: bool = False
    caller_turns: int = 0
    seq: int = 0  # the last transcript position given out
    pending: dict[str, int] = field(default_factory=dict)  # items placed, no line yet
    lines: int = 0
    failed_tools: int = 0
    silences: int = 0
    errors: int = 0
    running: dict[str, str] = field(default_factory=dict)  # tool call_id -> tool name
    tool_runs: int = 0
    usage: dict[str, int | float] = field(default_factory=dict)
    # a way out under way: "handing_off" | "transferring" | "ending", with what it needs
    leaving: str | None = None
    trigger: str | None = None
    target: str | None = None  # the first target of the handoff
    outcome: str | None = None  # the outcome of an ending
    ticket: str | None = None  # the handoff's ticket
    transfer_index: int = 0  # the target of the chain a transfer is at
    transfer_relayed: bool = False  # its REFER got a 200: waiting for the call to leave
    tried: list[dict[str, object]] = field(default_factory=list)  # the targets that failed
    latency: dict[str, Any] = field(default_factory=dict)  # the waits measured so far

    def as_data(self) -> dict[str, Any]:
        """JSON-ready data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> ResumeState | None:
        """The state written by :meth:`as_data`; None when missing or unreadable."""
        if data is None:
            return None
        try:
            return _ADAPTER.validate_python(dict(data))
        except pydantic.ValidationError:
            return None


_ADAPTER: Final = pydantic.TypeAdapter(ResumeState)
