"""The policy of one live call: server events and other inputs in, actions out. Pure.

:class:`CallSession` greets the caller, runs the route's tools (several per response; one
``function_call_output`` each, then one ``response.create``), answers MCP approval
requests by policy, handles keypad presses, watches the escalation triggers, and carries
out the built-ins ``transfer_to_human`` and ``end_call``. Its life::

    starting ─session.created─▶ talking ─trigger─▶ handing_off ─▶ transferring ─left─▶ over
                                 ▲ │              (summary, line)   (REFER, wait for the
                                 │ │                                 call to leave; fallbacks)
                                 │ └─end_call, key─▶ ending (goodbye, hang-up) ─▶ over
                                 └──── every target failed, on_transfer_failed = "resume"

The way out (a handoff, the transfer down the target's fallback chain, an ending) is
:mod:`callcenter.call.departure`'s; while it is under way the agent stays quiet. The
session reads no clock (``now`` is given; the executor arms the timers, and
:mod:`callcenter.call.timers` names the session's own) and does no I/O:
:mod:`callcenter.call.runner` executes its actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from openai.types.realtime import (
    ConversationItem,
    ConversationItemAdded,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferDtmfEventReceivedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferTimeoutTriggered,
    McpListToolsFailed,
    RateLimitsUpdatedEvent,
    RealtimeErrorEvent,
    RealtimeMcpApprovalRequest,
    RealtimeResponse,
    RealtimeServerEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemDoneEvent,
    SessionCreatedEvent,
)
from openai.types.realtime.realtime_server_event import (
    OutputAudioBufferCleared,
    OutputAudioBufferStarted,
    OutputAudioBufferStopped,
)

from callcenter.call import timers
from callcenter.call.actions import (
    Action,
    ControlDone,
    Input,
    OperatorHangup,
    OperatorInstruct,
    OperatorTransfer,
    Record,
    Send,
    SocketClosed,
    SocketDropped,
    TimerFired,
    ToolDone,
)
from callcenter.call.departure import DEFAULT_HANDOFF, Departure, SessionTimings
from callcenter.call.escalation import TransferTarget, Trigger, Triggers
from callcenter.call.items import add_item, function_output, system_message, user_note
from callcenter.call.rate_limits import RateLimitSnapshots
from callcenter.call.responses import KEY, ResponseQueue, verbatim
from callcenter.call.resume import ResumeState
from callcenter.call.timers import SilenceTimer
from callcenter.call.tool_calls import ToolCalls, answer_interrupted
from callcenter.call.transcript import Transcript, TranscriptLine
from callcenter.call.usage import Usage
from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.config.loader import Config, Route, silence_timer_seconds
from callcenter.tools.registry import ToolRegistry

__all__ = ["CallSession", "LiveCall", "Phase", "SessionTimings"]

ONE_MOMENT = "One moment, please, I'm still looking that up."
GOODBYE = "Thank you for calling. Goodbye."

Phase = Literal["starting", "talking", "handing_off", "transferring", "ending", "over"]


@dataclass(frozen=True, slots=True)
class LiveCall:
    """An accepted call, as the runtime needs it."""

    call_id: str
    route: str | None
    greeting: str | None = None
    handoff: str | None = None  # said before transferring, for a refer route
    transfer_to: tuple[TransferTarget, ...] = field(default=())  # a refer route's chain
    accepted_at: float | None = None  # when the accept was sent (monotonic seconds)


class CallSession:
    """The decisions of one call; feed it with :meth:`feed` and execute what it returns."""

    def __init__(
        self,
        call: LiveCall,
        *,
        route: Route | None,
        config: Config,
        tools: ToolRegistry,
        timings: SessionTimings | None = None,
    ) -> None:
        self.call = call
        self._route = route
        self._slow_tool_notice = config.slow_tool_notice
        self._triggers = Triggers(route.escalation if route else None)
        self._queue = ResponseQueue()
        default_target = route.escalation.target if route and route.escalation else None
        self._tools = ToolCalls(
            route.tools if route else (),
            registry=tools,
            targets=config.targets,
            default_target=default_target,
            mcp=route.mcp if route else (),
        )
        self._transcript = Transcript()
        self._silence_timer = SilenceTimer(silence_timer_seconds(route, config))
        self._departure = Departure(
            call.call_id,
            self._queue,
            targets=config.targets,
            default_target=default_target,
            handoff_line=(route.handoff if route else None) or DEFAULT_HANDOFF,
            timings=timings or SessionTimings(),
            key=self._key,
            on_transfer_failed=route.on_transfer_failed if route else "resume",
        )
        self.usage = Usage()
        self.attaches = 0
        self._rate_limits = RateLimitSnapshots()
        self._caller_turns = 0
        self._answered = False
        self._keys = 0
        self._held: list[OperatorTransfer | OperatorInstruct] = []  # operator commands, early

    # -- state the executor reads ----------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """Where the call is in its life (see the module docstring)."""
        stage = self._departure.stage
        if stage != "none":
            return stage
        return "talking" if self.attaches else "starting"

    @property
    def finished(self) -> bool:
        """The call is over for us (a Finish action was given)."""
        return self._departure.stage == "over"

    @property
    def outcome(self) -> CallOutcome | None:
        """How the call ended, once it has."""
        return self._departure.outcome

    @property
    def trigger(self) -> Trigger | None:
        """What escalated the call, if anything did."""
        return self._departure.trigger

    @property
    def leaving(self) -> bool:
        """A REFER or hang-up was sent: a closed socket now means the call is over."""
        return self._departure.leaving

    @property
    def transcript_lines(self) -> int:
        """How many transcript lines were recorded."""
        return len(self._transcript)

    @property
    def tool_runs(self) -> int:
        """How many function tool calls finished."""
        return self._tools.finished

    # -- inputs ------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """The first actions: a refer route with no line transfers at once; others wait.

        Every call attaches its sideband, a refer route's too: its closing confirms the
        transfer.
        """
        if not self.call.transfer_to or self.call.handoff:
            return []
        return self._departure.transfer_route(self.call.transfer_to, None)

    def feed(self, item: Input | RealtimeServerEvent, now: float) -> list[Action]:
        """Take one input (``now``: monotonic seconds); return what to do, in order."""
        if self.finished:
            return []
        departure = self._departure
        departure.now = now
        if isinstance(item, ToolDone):
            return self._tool_done(item)
        if isinstance(item, TimerFired):
            return self._timer(item.name)
        if isinstance(item, ControlDone):
            return departure.control_done(item)
        if isinstance(item, SocketDropped):
            return [Record(EventKind.SIDEBAND_DROPPED, {"code": item.code})]
        if isinstance(item, SocketClosed):
            return self._socket_closed(item.lost)
        if isinstance(item, OperatorHangup):
            return departure.end(f"operator {item.operator}", CallOutcome.ENDED_BY_OPERATOR, None)
        if isinstance(item, OperatorTransfer | OperatorInstruct):
            return self._operator(item)
        return self._event(item, now)

    def _event(self, event: RealtimeServerEvent, now: float) -> list[Action]:
        settle = self._departure.settle
        if isinstance(event, SessionCreatedEvent):
            return self._attached()
        if isinstance(event, ConversationItemAdded | ConversationItemDone):
            return self._item(event.item)
        if isinstance(event, ResponseCreatedEvent):
            self._queue.created(event.response)
            return []
        if isinstance(event, ResponseFunctionCallArgumentsDoneEvent):
            return self._function_call(event)
        if isinstance(event, ResponseOutputItemDoneEvent):
            return self._item(event.item)
        if isinstance(event, ResponseDoneEvent):
            return self._response_done(event.response)
        if isinstance(event, OutputAudioBufferStarted):
            return settle(self._queue.playback("started", event.response_id))
        if isinstance(event, OutputAudioBufferStopped | OutputAudioBufferCleared):
            return settle(self._queue.playback("stopped", event.response_id))
        if isinstance(event, ConversationItemInputAudioTranscriptionCompletedEvent):
            return self._caller_said(event)
        if isinstance(event, ConversationItemInputAudioTranscriptionFailedEvent):
            return self._line(self._transcript.caller_unheard(event.item_id))
        if isinstance(event, InputAudioBufferSpeechStartedEvent):
            self._triggers.on_speech()
            self._silence_timer.void()
            return []
        if isinstance(event, InputAudioBufferTimeoutTriggered):
            return self._silence()
        if isinstance(event, McpListToolsFailed):
            return self._mcp_list_tools_failed(event)
        if isinstance(event, InputAudioBufferDtmfEventReceivedEvent):
            return self._dtmf(event.event)
        if isinstance(event, RateLimitsUpdatedEvent):
            return self._rate_limits.updated(event, now)
        if isinstance(event, RealtimeErrorEvent):
            return self._error(event)
        return []

    # -- resuming in another process ---------------------------------------------------------

    def resume_state(self) -> ResumeState:
        """What another process needs to go on with this call (see callcenter.call.resume)."""
        seq, pending, lines = self._transcript.state()
        call, triggers = self.call, self._triggers
        state = ResumeState(
            route=call.route,
            greeting=call.greeting,
            handoff=call.handoff,
            transfer_to=call.transfer_to,
            attaches=self.attaches,
            keys=self._keys,
            answered=self._answered,
            caller_turns=self._caller_turns,
            seq=seq,
            pending=pending,
            lines=lines,
            failed_tools=triggers.failed_tools,
            silences=triggers.silences,
            errors=triggers.errors,
            running=self._tools.running(),
            tool_runs=self._tools.finished,
            usage=dict(self.usage.as_data()),
        )
        return self._departure.handed_over(state)

    def resume(self, state: ResumeState, elapsed: float) -> list[Action]:
        """Go on from ``state``, taken over ``elapsed`` seconds after the call was answered.

        The call keeps its greeting said, its transcript positions and counters; each tool
        call that was running is answered to the model as interrupted, then the model goes
        on. A handoff under way starts again (same ticket, the line said again); an ending
        hangs up at once. A call never greeted is greeted on its next attach.
        """
        self.attaches = state.attaches
        self._keys = state.keys
        self._answered = state.answered
        self._caller_turns = state.caller_turns
        self._transcript.restore(state.seq, state.pending, state.lines)
        self._triggers.failed_tools = state.failed_tools
        self._triggers.silences = state.silences
        self._triggers.errors = state.errors
        self._tools.finished = state.tool_runs
        self.usage = Usage(**state.usage)  # type: ignore[arg-type]
        interrupted = {"interrupted": sorted(state.running)}
        actions: list[Action] = [Record(EventKind.TAKEN_OVER, interrupted)]
        if not state.attaches:
            return actions
        limit = self._triggers.max_length_seconds
        if limit is not None:
            actions.append(timers.max_length(max(limit - elapsed, 0.0)))
        actions += answer_interrupted(state.running, self._event_id)
        if state.leaving is not None:
            for _ in state.running:  # each a failed tool call; the way out is under way
                self._triggers.on_tool_result(False)
            return actions + self._departure.carry_on(state, self.call.transfer_to)
        for _ in state.running:  # each a failed tool call: enough in a row escalate
            actions += self._tool_failures(False)
        if state.running and self.phase == "talking":
            actions += self._ask("followup")
        return actions

    # -- the conversation --------------------------------------------------------------------

    def _attached(self) -> list[Action]:
        self.attaches += 1
        if self.attaches > 1:
            resend = [Send(event) for event in self._queue.reattached()]
            return [Record(EventKind.SIDEBAND_REATTACHED, {"attach": self.attaches}), *resend]
        if self.call.transfer_to:  # a refer route: say its line (if not under way), transfer
            if self._departure.stage != "none":
                return []
            return self._departure.transfer_route(self.call.transfer_to, self.call.handoff)
        actions = self._say("greeting", self.call.greeting) if self.call.greeting else []
        limit = self._triggers.max_length_seconds
        if limit is not None:
            actions.append(timers.max_length(limit))
        held, self._held = self._held, []
        for command in held:  # an operator acted before the session was up
            actions += self._operator(command)
        return actions

    def _item(self, item: ConversationItem) -> list[Action]:
        if self._transcript.item_added(item):
            self._caller_turns += 1
        if item.type == "mcp_approval_request":
            return self._approve(item)
        if item.type == "mcp_call":
            recorded = self._tools.mcp_call(item)
            return recorded + (self._tool_failures(item.error is None) if recorded else [])
        return []

    def _mcp_list_tools_failed(self, event: McpListToolsFailed) -> list[Action]:
        """An MCP server's tools could not be listed: its tools are gone for this call, a
        tool failure for escalation."""
        record = Record(EventKind.MCP_LIST_TOOLS_FAILED, {"item_id": event.item_id})
        return [record, *self._tool_failures(False)]

    def _tool_failures(self, ok: bool) -> list[Action]:
        """A function tool, an MCP call or an MCP tool list finished: ``max_tool_failures``
        failures in a row escalate. (After MCP the model goes on by itself: the server
        runs MCP within the response.)"""
        trigger = self._triggers.on_tool_result(ok)
        if trigger is None:
            return []
        return self._escalate(trigger, f"{self._triggers.failed_tools} tool calls failed in a row")

    def _caller_said(
        self, event: ConversationItemInputAudioTranscriptionCompletedEvent
    ) -> list[Action]:
        self.usage.add_transcription(event.usage)
        actions = self._line(self._transcript.caller_said(event.item_id, event.transcript))
        phrase = self._triggers.phrase_in(event.transcript)
        if phrase is not None:
            actions += self._escalate("phrase", f"the caller said {phrase!r}")
        return actions

    def _response_done(self, response: RealtimeResponse) -> list[Action]:
        self.usage.add_response(response.usage)
        key = (response.metadata or {}).get(KEY)
        if isinstance(key, str) and key.startswith("summary-"):  # out of band
            settled = self._departure.settle(self._queue.done(response))
            return settled + self._departure.summary_done(key, response)
        lines = self._transcript.agent_lines(response)
        actions: list[Action] = [Record(EventKind.TRANSCRIPT, line.as_data()) for line in lines]
        if response.status == "completed" and self._caller_turns and self.phase == "talking":
            self._answered = True
        if self._tools.response_done(response.id or "") and self.phase == "talking":
            actions += self._ask("followup")
        elif self.phase == "talking":
            actions += self._silence_timer.arm()
        return actions + self._departure.settle(self._queue.done(response))

    def _function_call(self, event: ResponseFunctionCallArgumentsDoneEvent) -> list[Action]:
        if self.phase != "talking":
            output = {"error": "the call is being transferred or is ending"}
            return [add_item(function_output(event.call_id, output), self._event_id())]
        begun = self._tools.begin(event, self._event_id, self._slow_tool_notice)
        actions = list(begun.actions)
        if begun.builtin == "end_call":
            return actions + self._departure.end("end_call", CallOutcome.ENDED_BY_AGENT, GOODBYE)
        if begun.builtin == "transfer_to_human":
            return actions + self._escalate("tool", begun.reason, begun.target)
        if begun.failed:
            actions += self._tool_result(False, event.response_id)
        return actions

    def _tool_done(self, done: ToolDone) -> list[Action]:
        finished = self._tools.finish(done, self._event_id())
        if finished is None:
            return []
        actions, response_id = finished
        return actions + self._tool_result(done.result.ok, response_id)

    def _tool_result(self, ok: bool, response_id: str) -> list[Action]:
        escalated = self._tool_failures(ok)
        if escalated:
            return escalated
        if self._tools.complete(response_id) and self.phase == "talking":
            return self._ask("followup")
        return []

    def _approve(self, request: RealtimeMcpApprovalRequest) -> list[Action]:
        actions = self._tools.approve(request, self._event_id)
        if not actions or self.phase != "talking":
            return actions
        if self._queue.idle:  # no response to wait for: the model goes on now
            return actions + self._ask("followup")
        self._tools.go_on_after_response()
        return actions

    def _dtmf(self, key: str) -> list[Action]:
        actions: list[Action] = [Record(EventKind.DTMF, {"key": key})]
        if self.phase != "talking":
            return actions
        action = self._route.dtmf_action(key) if self._route else None
        if action is None:
            note = user_note(f"The caller pressed {key}.")
            return [*actions, add_item(note, self._event_id()), *self._ask("dtmf")]
        if action.kind == "end":
            return actions + self._departure.end(f"key {key}", CallOutcome.ENDED_BY_AGENT, GOODBYE)
        return actions + self._escalate("dtmf", f"the caller pressed {key}", action.target)

    def _operator(self, command: OperatorTransfer | OperatorInstruct) -> list[Action]:
        if self.phase == "starting":  # kept until the sideband is up
            self._held.append(command)
            return []
        if isinstance(command, OperatorTransfer):
            return self._escalate("operator", f"operator {command.operator}", command.target)
        return self._instruct(command)

    def _instruct(self, command: OperatorInstruct) -> list[Action]:
        data = {"operator": command.operator, "text": command.text}
        if self.phase != "talking":
            ignored = {**data, "phase": self.phase}
            return [Record(EventKind.OPERATOR_INSTRUCTION_IGNORED, ignored)]
        note = add_item(system_message(command.text), self._event_id())
        return [Record(EventKind.OPERATOR_INSTRUCTION, data), note, *self._ask("instruct")]

    def _silence(self) -> list[Action]:
        trigger = self._triggers.on_silence()
        actions: list[Action] = [Record(EventKind.SILENCE, {"in_a_row": self._triggers.silences})]
        if trigger is not None:
            actions += self._escalate(trigger, f"{self._triggers.silences} silences in a row")
        return actions

    def _error(self, event: RealtimeErrorEvent) -> list[Action]:
        refused = self._queue.refused(event.error)
        if refused is not None:
            return self._departure.settle(refused)
        error = event.error
        data = {
            "type": error.type,
            "code": error.code,
            "message": error.message,
            "event_id": error.event_id,
        }
        actions: list[Action] = [Record(EventKind.ERROR, data)]
        trigger = self._triggers.on_error()
        if trigger is not None:
            actions += self._escalate(trigger, f"{self._triggers.errors} error events")
        return actions

    def _timer(self, name: str) -> list[Action]:
        if name == timers.MAX_LENGTH:
            return self._escalate("max_length", "the call reached its maximum length")
        if self._silence_timer.owns(name):
            if not self._silence_timer.latest(name) or self.phase != "talking":
                return []
            actions = self._silence()  # as the API's idle timeout, then the model checks in
            return actions + self._ask("silence") if self.phase == "talking" else actions
        response_id = timers.slow_response(name)
        if response_id is not None:
            if self.phase == "talking" and self._tools.needs_notice(response_id):
                return self._say(self._key("notice"), ONE_MOMENT)
            return []
        return self._departure.timer(name)

    def _escalate(self, trigger: Trigger, reason: str, target: str | None = None) -> list[Action]:
        if self.phase != "talking":
            return []
        return self._departure.escalate(trigger, reason, target)

    def _socket_closed(self, lost: bool) -> list[Action]:
        departure = self._departure
        if departure.stage != "none":
            return departure.socket_closed(lost)
        departure.socket_open = False
        if lost:  # the call may go on, unsupervised: end it
            return departure.end("sideband lost", CallOutcome.FAILED, None)
        served = self._answered and self._tools.idle and self._queue.idle
        return departure.finish(CallOutcome.COMPLETED if served else CallOutcome.HUNG_UP_BY_CALLER)

    # -- helpers -----------------------------------------------------------------------------

    def _say(self, key: str, line: str) -> list[Action]:
        return [Send(event) for event in self._queue.request(key, verbatim(line))]

    def _ask(self, prefix: str) -> list[Action]:
        return [Send(event) for event in self._queue.request(self._key(prefix), {})]

    def _line(self, line: TranscriptLine | None) -> list[Action]:
        return [Record(EventKind.TRANSCRIPT, line.as_data())] if line is not None else []

    def _key(self, prefix: str) -> str:
        self._keys += 1
        return f"{prefix}-{self._keys}"

    def _event_id(self) -> str:
        self._keys += 1
        return f"cc_{self._keys}"
