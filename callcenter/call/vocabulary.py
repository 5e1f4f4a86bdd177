"""The words a call is described with, each defined once: decisions, statuses, outcomes, events.

Intake, the call session, the store, the metrics, the operator API and console, the CLI,
the demo and the docs all speak of calls in these words; their values are the strings
stored in the database and shown by every surface. ``docs/vocabulary.md`` lists each one
(a test holds the table and this module together).

- :class:`DecisionKind`: what routing decided for a ringing call.
- :class:`CallStatus`: where a call is in its life, as stored (``calls.status``).
- :class:`CallOutcome`: how a call went (``calls.outcome``); each outcome implies one status.
- :class:`EventKind`: the kinds of events recorded in a call's history (``call_events.kind``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "LIVE_STATUSES",
    "CallOutcome",
    "CallStatus",
    "DecisionKind",
    "DeliveryStatus",
    "EventKind",
]


class DecisionKind(StrEnum):
    """What routing decided for a ringing call."""

    ACCEPT = "accept"  # answer it with the route's agent
    REJECT = "reject"  # refuse it with a SIP status code
    REFER = "refer"  # transfer it to a target (after a handoff line, if the route has one)


class CallStatus(StrEnum):
    """Where a call is in its life, as stored."""

    RINGING = "ringing"  # claimed and being decided; not answered yet
    ACTIVE = "active"  # answered; a worker holds its sideband
    REJECTED = "rejected"  # refused with a SIP status code
    REFERRED = "referred"  # transferred to a human (SIP REFER): it left us
    ENDED = "ended"  # over: hung up by the caller, the agent or an operator
    FAILED = "failed"  # over because something went wrong on our side or at OpenAI


#: Statuses that hold a slot against the concurrency cap.
LIVE_STATUSES: Final = (CallStatus.RINGING, CallStatus.ACTIVE)


class CallOutcome(StrEnum):
    """How a call went: ``accepted`` and ``transferring`` while it is live, then its end."""

    ACCEPTED = "accepted"  # answered by the route's agent; the call goes on
    TRANSFERRING = "transferring"  # answered by a refer route, to transfer it; goes on
    REJECTED = "rejected"  # refused with a SIP status code (a route, screening, the cap)
    REFERRED = "referred"  # a refer route transferred it to its target
    TRANSFERRED = "transferred"  # an escalation handed it to a human
    COMPLETED = "completed"  # the caller hung up after the agent had answered them
    HUNG_UP_BY_CALLER = "hung_up_by_caller"  # the caller hung up before being served
    CALLER_GONE = "caller_gone"  # the caller hung up while it rang (404 on our answer)
    ENDED_BY_AGENT = "ended_by_agent"  # the agent ended it (end_call, or a key set to end)
    ENDED_BY_OPERATOR = "ended_by_operator"  # an operator hung it up
    TRANSFER_FAILED = "transfer_failed"  # every transfer target failed; we hung it up
    CONFLICT = "conflict"  # someone else answered it first (409 on our answer)
    FAILED = "failed"  # a call action failed, the sideband was lost, or the session crashed

    @property
    def status(self) -> CallStatus:
        """The status a call with this outcome has."""
        return _STATUS_OF[self]

    @property
    def final(self) -> bool:
        """Whether the call is over once it has this outcome."""
        return self not in (CallOutcome.ACCEPTED, CallOutcome.TRANSFERRING)


_STATUS_OF: Final = {
    CallOutcome.ACCEPTED: CallStatus.ACTIVE,
    CallOutcome.TRANSFERRING: CallStatus.ACTIVE,
    CallOutcome.REJECTED: CallStatus.REJECTED,
    CallOutcome.REFERRED: CallStatus.REFERRED,
    CallOutcome.TRANSFERRED: CallStatus.REFERRED,
    CallOutcome.COMPLETED: CallStatus.ENDED,
    CallOutcome.HUNG_UP_BY_CALLER: CallStatus.ENDED,
    CallOutcome.CALLER_GONE: CallStatus.ENDED,
    CallOutcome.ENDED_BY_AGENT: CallStatus.ENDED,
    CallOutcome.ENDED_BY_OPERATOR: CallStatus.ENDED,
    CallOutcome.TRANSFER_FAILED: CallStatus.ENDED,
    CallOutcome.CONFLICT: CallStatus.FAILED,
    CallOutcome.FAILED: CallStatus.FAILED,
}


class EventKind(StrEnum):
    """The kinds of events in a call's history."""

    TRANSCRIPT = "transcript"  # a caller or agent line
    TOOL = "tool"  # a function tool call: arguments, result, duration, error
    MCP_CALL = "mcp_call"  # a call to an MCP server, run on OpenAI's side
    MCP_APPROVAL = "mcp_approval"  # an MCP approval request answered by policy
    MCP_LIST_TOOLS_FAILED = "mcp_list_tools_failed"  # an MCP server's tools could not be listed
    DTMF = "dtmf"  # a key the caller pressed
    SILENCE = "silence"  # the idle timeout fired
    ERROR = "error"  # an error event from the server
    RATE_LIMITS = "rate_limits"  # a snapshot of the rate limits
    SIDEBAND_DROPPED = "sideband_dropped"  # the sideband dropped while the call goes on
    SIDEBAND_REATTACHED = "sideband_reattached"  # a new sideband to the same call
    TAKEN_OVER = "taken_over"  # another process took the call over: the tools it interrupted
    ESCALATION = "escalation"  # the call is being handed to a human: trigger, target, ticket
    ESCALATION_UNAVAILABLE = "escalation_unavailable"  # a trigger fired, but no target is set
    HANDOFF_ABANDONED = "handoff_abandoned"  # the caller hung up during the handoff
    TRANSFERRED = "transferred"  # a REFER went through and the call left us
    REFER_FAILED = "refer_failed"  # a REFER to one target was refused
    TRANSFER_UNANSWERED = "transfer_unanswered"  # relayed, but still with us after answer_timeout
    TRANSFER_FAILED = "transfer_failed"  # every target of the chain failed
    ENDING = "ending"  # the call is being ended: reason and outcome
    HANGUP_FAILED = "hangup_failed"  # our hang-up failed
    OPERATOR_INSTRUCTION = "operator_instruction"  # a supervisor's instruction to the agent
    OPERATOR_INSTRUCTION_IGNORED = "operator_instruction_ignored"  # came while leaving


class DeliveryStatus(StrEnum):
    """Where one notification to one receiver is (``notifications.status``)."""

    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up: a 410, or still failing past the retry horizon
