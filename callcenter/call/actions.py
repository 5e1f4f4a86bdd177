"""What a call session is fed, besides server events, and what it asks the executor to do.

:class:`~callcenter.call.session.CallSession` is pure: it gets the SDK's parsed server events
and the inputs below (tool results, timers, REST results, the socket's fate, operator
commands), and answers with a list of actions, executed in order by
:mod:`callcenter.call.runner`. Every one is a frozen dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from callcenter.call.escalation import Trigger
from callcenter.call.vocabulary import CallOutcome, CallStatus, EventKind
from callcenter.tools.run import ToolResult
from callcenter.tools.spec import ToolSpec

__all__ = [
    "Action",
    "CancelTools",
    "ControlDone",
    "Escalated",
    "Finish",
    "HangUpCall",
    "Input",
    "OperatorCommand",
    "OperatorHangup",
    "OperatorInstruct",
    "OperatorTransfer",
    "Record",
    "ReferCall",
    "RunTool",
    "SaveHandoff",
    "Send",
    "SetTimer",
    "SocketClosed",
    "SocketDropped",
    "TimerFired",
    "ToolDone",
]

# -- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolDone:
    """A tool run (asked for with :class:`RunTool`) finished."""

    call_id: str
    result: ToolResult


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The timer ``name`` (set with :class:`SetTimer`) ran out."""

    name: str


@dataclass(frozen=True, slots=True)
class ControlDone:
    """A REFER or hang-up finished: ``error`` None means it went through."""

    verb: Literal["refer", "hangup"]
    uri: str | None = None
    status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SocketDropped:
    """The sideband dropped while the call goes on; it is being reattached."""

    code: int | None


@dataclass(frozen=True, slots=True)
class SocketClosed:
    """The sideband is gone for good.

    ``lost``: we gave up reattaching while the call may still be live; otherwise the server
    ended it (a normal close, or a refused reattach: the call is over).
    """

    lost: bool = False


@dataclass(frozen=True, slots=True)
class OperatorTransfer:
    """An operator asks to transfer the call to ``target`` (a target name or URI)."""

    target: str
    operator: str


@dataclass(frozen=True, slots=True)
class OperatorHangup:
    """An operator asks to hang the call up."""

    operator: str


@dataclass(frozen=True, slots=True)
class OperatorInstruct:
    """A supervisor's instruction to the agent: a system item, then a new response."""

    text: str
    operator: str


OperatorCommand = OperatorTransfer | OperatorHangup | OperatorInstruct
Input = ToolDone | TimerFired | ControlDone | SocketDropped | SocketClosed | OperatorCommand

# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send a client event (JSON-ready, in the SDK's ``RealtimeClientEventParam`` shapes)."""

    event: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run the company tool ``spec`` with the model's JSON ``arguments``; answer ToolDone."""

    call_id: str
    spec: ToolSpec
    arguments: str

    @property
    def name(self) -> str:
        """The tool's name."""
        return self.spec.name


@dataclass(frozen=True, slots=True)
class CancelTools:
    """Cancel every tool run still pending."""


@dataclass(frozen=True, slots=True)
class ReferCall:
    """Transfer the call (SIP REFER) to ``uri``; answer ControlDone."""

    uri: str


@dataclass(frozen=True, slots=True)
class HangUpCall:
    """Hang the call up; answer ControlDone."""


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Fire TimerFired(``name``) in ``seconds`` (a timer of the same name is replaced)."""

    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Record:
    """Append an event of ``kind`` to the call's history in the store."""

    kind: EventKind
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Escalated:
    """Count and log that the call is being handed to a human (its Record stores it)."""

    trigger: Trigger
    target: str
    ticket: str


@dataclass(frozen=True, slots=True)
class SaveHandoff:
    """Store the escalation's ticket, trigger and summary on the call."""

    ticket: str
    trigger: str
    summary: str | None


@dataclass(frozen=True, slots=True)
class Finish:
    """The call is over for us: record ``outcome`` (and ``target`` of a transfer), stop."""

    outcome: CallOutcome
    target: str | None = None

    def __post_init__(self) -> None:
        if not self.outcome.final:
            raise ValueError(f"{self.outcome} is not the outcome of a call that is over")

    @property
    def status(self) -> CallStatus:
        """The status the call is left in."""
        return self.outcome.status


Action = (
    Send
    | RunTool
    | CancelTools
    | ReferCall
    | HangUpCall
    | SetTimer
    | Record
    | Escalated
    | SaveHandoff
    | Finish
)
