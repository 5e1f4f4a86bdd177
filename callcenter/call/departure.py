"""How a call leaves us: handed to a human, or ended; and the outcome that follows. Pure.

A handoff asks the model for a summary out of band and says the handoff line at once;
once both are in (each within its bound) it stores the ticket and REFERs down the target's
fallback chain. A refer route does the same without summary or ticket.

A 200 from the REFER only says it was relayed: the call is *transferred* once it leaves
us (the sideband closes). Each target has ``answer_timeout`` seconds for that; a call still
with us after it is ``transfer_unanswered`` and the next target is tried, as after a
refused REFER (``refer_failed``; control retries a 5xx once, quickly). When every target
failed, the caller hears so and the route's ``on_transfer_failed`` applies: ``resume`` (the
agent carries on) or ``hangup``. An ending says goodbye (boundedly) and hangs up. Part of
:mod:`callcenter.call.session`, which feeds it and sets :attr:`Departure.now`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from openai.types.realtime import RealtimeResponse

from callcenter.call import escalation
from callcenter.call.actions import (
    Action,
    CancelTools,
    ControlDone,
    Escalated,
    Finish,
    HangUpCall,
    Record,
    ReferCall,
    SaveHandoff,
    Send,
    SetTimer,
)
from callcenter.call.escalation import TransferTarget, Trigger
from callcenter.call.responses import Heard, ResponseQueue, verbatim
from callcenter.call.resume import ResumeState
from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.config.loader import Target
from callcenter.config.model import OnTransferFailed

__all__ = ["ATTEMPT_KINDS", "DEFAULT_HANDOFF", "Departure", "SessionTimings", "Stage"]

DEFAULT_HANDOFF = "Let me connect you with a colleague. One moment, please."
NO_ONE_AVAILABLE = (
    "I'm sorry, I couldn't reach a colleague right now. Please call again later. Goodbye."
)
STILL_HERE = "I'm sorry, I couldn't reach a colleague right now. I'm still here to help you."
#: The events that end one transfer attempt (each names its target, URI and seconds).
ATTEMPT_KINDS = (EventKind.TRANSFERRED, EventKind.REFER_FAILED, EventKind.TRANSFER_UNANSWERED)

Stage = Literal["none", "handing_off", "transferring", "ending", "over"]


@dataclass(frozen=True, slots=True)
class SessionTimings:
    """Bounds, in seconds, on what a call waits for."""

    line_said: float = 10.0  # a handoff line or goodbye to be heard
    summary: float = 5.0  # the model's handoff summary


@dataclass(slots=True)
class _Handoff:
    chain: tuple[TransferTarget, ...]
    trigger: Trigger | None  # None: the route itself transfers (a refer route)
    ticket: str | None = None
    summary_key: str | None = None  # the summary response still awaited
    line_key: str | None = None  # the handoff line still to be heard
    summary: str | None = None
    index: int = 0
    uri: str | None = None  # the URI of the REFER under way
    started: float = 0.0  # when it was sent (the session's monotonic seconds)
    answer_key: str | None = None  # set once the REFER was relayed: its answer timer
    tried: list[dict[str, object]] = field(default_factory=list)  # target and result of each


@dataclass(slots=True)
class _Ending:
    outcome: CallOutcome
    line_key: str | None
    hangup_sent: bool = False


class Departure:
    """The way out of one call, once one is taken."""

    def __init__(
        self,
        call_id: str,
        queue: ResponseQueue,
        *,
        targets: Mapping[str, Target],
        default_target: str | None,
        handoff_line: str,
        timings: SessionTimings,
        key: Callable[[str], str],
        on_transfer_failed: OnTransferFailed = "resume",
    ) -> None:
        self._call_id = call_id
        self._queue = queue
        self._targets = targets
        self._default_target = default_target
        self._handoff_line = handoff_line
        self._timings = timings
        self._key = key
        self._on_transfer_failed = on_transfer_failed
        self._handoff: _Handoff | None = None
        self._ending: _Ending | None = None
        self._escalations = 0
        self.stage: Stage = "none"
        self.outcome: CallOutcome | None = None
        self.trigger: Trigger | None = None
        self.socket_open = True
        self.now = 0.0  # the time of the input being fed (monotonic seconds)

    @property
    def leaving(self) -> bool:
        """A REFER or hang-up is on its way: a closed socket now means the call is over.

        Not while a relayed REFER waits for the call to leave: a drop then is reattached,
        and the call has left when the reattach is refused.
        """
        ending = self._ending is not None and self._ending.hangup_sent
        handoff = self._handoff
        awaiting = handoff is not None and handoff.answer_key is not None
        return (self.stage == "transferring" and not awaiting) or self.stage == "over" or ending

    def handed_over(self, state: ResumeState) -> ResumeState:
        """``state`` with the way out under way, if any: what a takeover must carry on."""
        handoff, ending, stage = self._handoff, self._ending, self.stage
        return replace(
            state,
            leaving=stage if stage in ("handing_off", "transferring", "ending") else None,
            trigger=self.trigger,
            target=str(handoff.chain[0]) if handoff is not None and handoff.chain else None,
            outcome=ending.outcome if ending is not None else None,
            ticket=handoff.ticket if handoff is not None else None,
            transfer_index=handoff.index if handoff is not None else 0,
            transfer_relayed=handoff is not None and handoff.answer_key is not None,
            tried=list(handoff.tried) if handoff is not None else [],
        )

    def carry_on(self, state: ResumeState, route_chain: tuple[TransferTarget, ...]) -> list[Action]:
        """Go on with the way out a takeover cut short (``state.leaving`` is set).

        An ending hangs up at once; a transfer goes on at the target it had reached; a
        handoff starts again (same ticket, the line said again). ``route_chain``: a refer
        route's chain (an escalation's comes from its target).
        """
        if state.leaving == "ending":
            outcome = CallOutcome(state.outcome or CallOutcome.COMPLETED)
            return self.end("taken over while ending", outcome, None)
        if state.leaving == "transferring":
            return self._resume_transfer(route_chain, state)
        if state.trigger in escalation.TRIGGERS:
            return self.escalate(state.trigger, "taken over during a handoff", state.target)
        return self.transfer_route(route_chain, None)  # a refer route

    def _resume_transfer(
        self, route_chain: tuple[TransferTarget, ...], state: ResumeState
    ) -> list[Action]:
        """At the target a transfer had reached: wait again for a relayed REFER to be
        answered, or send the REFER under way again."""
        trigger = next((t for t in escalation.TRIGGERS if t == state.trigger), None)
        chain = route_chain
        if trigger is not None and state.target is not None:
            chain = self.chain_of(state.target)
        index, ticket = state.transfer_index, state.ticket
        self.trigger = trigger
        handoff = _Handoff(chain, trigger, ticket, index=index, tried=list(state.tried))
        self._handoff = handoff
        if index >= len(chain) or not state.transfer_relayed:
            return self._refer_next()
        self.stage = "transferring"
        handoff.uri = escalation.refer_uri(chain[index], ticket)
        handoff.started = self.now
        handoff.answer_key = self._key("answer")
        return [SetTimer(handoff.answer_key, chain[index].answer_timeout)]

    def transfer_route(self, chain: tuple[TransferTarget, ...], line: str | None) -> list[Action]:
        """A refer route: say its line (if any), then REFER down ``chain`` in turn."""
        self._handoff = _Handoff(chain, None)
        if line is None:
            return self._refer_next()
        self.stage = "handing_off"
        return self._say_handoff(line)

    def chain_of(self, target: str) -> tuple[TransferTarget, ...]:
        """The transfer chain of ``target`` (a name or URI); empty if it is neither."""
        try:
            return escalation.transfer_chain(self._targets, target)
        except ValueError:
            return ()

    def escalate(self, trigger: Trigger, reason: str, target: str | None) -> list[Action]:
        """Hand the call to a human: ``target`` (a name or URI) or the route's target."""
        if self.stage != "none":
            return []
        name = target or self._default_target
        try:
            if name is None:
                raise ValueError("no target configured for this route")
            chain = escalation.transfer_chain(self._targets, name)
        except ValueError as error:
            data = {"trigger": trigger, "reason": str(error)}
            return [Record(EventKind.ESCALATION_UNAVAILABLE, data)]
        self._escalations += 1
        self.trigger = trigger
        ticket = escalation.ticket_for(self._call_id, self._escalations)
        summary_key = self._key("summary")
        self._handoff = _Handoff(chain, trigger, ticket, summary_key)
        self.stage = "handing_off"
        self._queue.drop_waiting()
        data = {"trigger": trigger, "reason": reason, "target": name, "ticket": ticket}
        summary = self._queue.aside(summary_key, escalation.summary_request())
        return [
            Record(EventKind.ESCALATION, data),
            Escalated(trigger, name, ticket),
            Send(summary),
            SetTimer(summary_key, self._timings.summary),
            *self._say_handoff(self._handoff_line),
        ]

    def end(self, reason: str, outcome: CallOutcome, line: str | None) -> list[Action]:
        """End the call with ``outcome``: say ``line`` (boundedly), then hang up."""
        if self.stage != "none":
            return []
        self.stage = "ending"
        self._queue.drop_waiting()
        actions: list[Action] = [Record(EventKind.ENDING, {"reason": reason, "outcome": outcome})]
        if line is None or not self.socket_open:
            self._ending = _Ending(outcome, None, hangup_sent=True)
            return [*actions, HangUpCall()]
        key = self._key("goodbye")
        self._ending = _Ending(outcome, key)
        return [*actions, *self._say(key, line), SetTimer(key, self._timings.line_said)]

    def finish(self, outcome: CallOutcome, target: str | None = None) -> list[Action]:
        """The call is over for us."""
        self.stage = "over"
        self.outcome = outcome
        return [CancelTools(), Finish(outcome, target)]

    def settle(self, heard: Heard) -> list[Action]:
        """Send what the queue lets go; move on where a line we waited for is heard."""
        actions: list[Action] = [Send(event) for event in heard.sends]
        for key in heard.heard:
            if self._handoff is not None and key == self._handoff.line_key:
                self._handoff.line_key = None
                actions += self._proceed()
            ending = self._ending
            if ending is not None and key == ending.line_key and not ending.hangup_sent:
                ending.line_key, ending.hangup_sent = None, True
                actions.append(HangUpCall())
        return actions

    def summary_done(self, key: str, response: RealtimeResponse) -> list[Action]:
        """The out-of-band response ``key`` is done: the summary, if it is the one awaited."""
        handoff = self._handoff
        if handoff is None or key != handoff.summary_key:
            return []
        completed = response.status == "completed"
        handoff.summary = escalation.summary_text(response) if completed else None
        handoff.summary_key = None
        return self._proceed()

    def timer(self, name: str) -> list[Action]:
        """A bound ran out: the target did not answer, or go on without the summary, or as
        if the line was heard."""
        handoff = self._handoff
        if handoff is not None and name == handoff.answer_key and self.stage == "transferring":
            handoff.answer_key = None
            target = handoff.chain[handoff.index]
            data = self._attempt("unanswered", answer_timeout=target.answer_timeout)
            handoff.index += 1
            return [Record(EventKind.TRANSFER_UNANSWERED, data), *self._refer_next()]
        if handoff is not None and name == handoff.summary_key:
            handoff.summary_key = None
            return self._proceed()
        return self.settle(Heard(heard=[name]))

    def control_done(self, done: ControlDone) -> list[Action]:
        """A REFER or hang-up finished."""
        if done.verb == "hangup":
            ending = self._ending
            outcome = ending.outcome if ending is not None else CallOutcome.ENDED_BY_AGENT
            if done.error is None or done.status == 404:
                return self.finish(outcome)
            failed = Record(EventKind.HANGUP_FAILED, {"status": done.status})
            return [failed, *self.finish(CallOutcome.FAILED)]
        handoff = self._handoff
        if handoff is None or self.stage != "transferring" or done.uri != handoff.uri:
            return []
        if done.error is None:
            if not self.socket_open:  # the call left while the REFER was being answered
                return self._transferred()
            handoff.answer_key = self._key("answer")
            return [SetTimer(handoff.answer_key, handoff.chain[handoff.index].answer_timeout)]
        data = self._attempt("refused", status=done.status, reason=done.error)
        failed = Record(EventKind.REFER_FAILED, data)
        if done.status == 404:  # the call is gone: no target can take it
            return [failed, *self.finish(CallOutcome.HUNG_UP_BY_CALLER)]
        if done.status == 409:  # the call is no longer ours
            return [failed, *self.finish(CallOutcome.FAILED)]
        handoff.index += 1
        return [failed, *self._refer_next()]

    def socket_closed(self, lost: bool) -> list[Action]:
        """The sideband is gone for good while leaving (``lost``: the call may go on)."""
        self.socket_open = False
        handoff, ending = self._handoff, self._ending
        if self.stage == "handing_off" and handoff is not None:
            if not lost:
                abandoned = Record(EventKind.HANDOFF_ABANDONED, {})
                return [abandoned, *self.finish(CallOutcome.HUNG_UP_BY_CALLER)]
            handoff.line_key = handoff.summary_key = None
            return self._proceed()
        if self.stage == "ending" and ending is not None and not ending.hangup_sent:
            if not lost:
                return self.finish(ending.outcome)
            ending.line_key, ending.hangup_sent = None, True
            return [HangUpCall()]
        if self.stage == "transferring" and handoff is not None and handoff.answer_key:
            return self._transferred()  # it left us (lost: relayed, and no longer watched)
        return []

    def _transferred(self) -> list[Action]:
        handoff = self._handoff
        assert handoff is not None
        handoff.answer_key = None
        data = self._attempt("transferred", ticket=handoff.ticket)
        referred = CallOutcome.REFERRED if handoff.trigger is None else CallOutcome.TRANSFERRED
        return [Record(EventKind.TRANSFERRED, data), *self.finish(referred, handoff.uri)]

    def _attempt(self, result: str, **extra: object) -> dict[str, object]:
        """The record of the attempt under way, ended with ``result``."""
        handoff = self._handoff
        assert handoff is not None
        target = str(handoff.chain[handoff.index])
        handoff.tried.append({"target": target, "result": result})
        seconds = round(max(self.now - handoff.started, 0.0), 3)
        return {"target": target, "uri": handoff.uri, "result": result, "seconds": seconds, **extra}

    def _say_handoff(self, line: str) -> list[Action]:
        assert self._handoff is not None
        key = self._handoff.line_key = self._key("handoff")
        return [*self._say(key, line), SetTimer(key, self._timings.line_said)]

    def _proceed(self) -> list[Action]:
        handoff = self._handoff
        if self.stage != "handing_off" or handoff is None:
            return []
        if handoff.line_key is not None or handoff.summary_key is not None:
            return []
        actions: list[Action] = []
        if handoff.ticket is not None and handoff.trigger is not None:
            actions.append(SaveHandoff(handoff.ticket, handoff.trigger, handoff.summary))
        return actions + self._refer_next()

    def _refer_next(self) -> list[Action]:
        handoff = self._handoff
        assert handoff is not None
        if handoff.index < len(handoff.chain):
            self.stage = "transferring"
            handoff.uri = escalation.refer_uri(handoff.chain[handoff.index], handoff.ticket)
            handoff.started = self.now
            return [ReferCall(handoff.uri)]
        # a refer route has no agent to go on, nor a call whose sideband is gone
        resumable = handoff.trigger is not None and self.socket_open
        then = self._on_transfer_failed if resumable else "hangup"
        data = {
            "trigger": handoff.trigger,
            "ticket": handoff.ticket,
            "tried": list(handoff.tried),
            "then": then,
        }
        record = Record(EventKind.TRANSFER_FAILED, data)
        if handoff.trigger is None:  # a refer route: nothing to tell the caller, hang up
            self.stage = "ending"
            self._ending = _Ending(CallOutcome.TRANSFER_FAILED, None, hangup_sent=True)
            return [record, HangUpCall()]
        self.stage = "none"  # so that the agent, or the ending, can go on
        if then == "hangup":
            outcome = CallOutcome.TRANSFER_FAILED
            return [record, *self.end("no target took the call", outcome, NO_ONE_AVAILABLE)]
        self._handoff = None
        return [record, *self._say(self._key("resume"), STILL_HERE)]

    def _say(self, key: str, line: str) -> list[Action]:
        return [Send(event) for event in self._queue.request(key, verbatim(line))]
