"""The emulated model: turns each response request into the events the real API sends.

What a response says comes from the script's queued ``ModelSay`` / ``ModelCallTool`` steps;
with nothing queued, from the request (``"Say exactly: X"`` says X) or the conversation.
A response runs as a task so that playback, pacing and interruptions (the caller barging
in, ``response.cancel``) happen in time; every check for an interruption falls between two
whole events.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import callcenter.emulator.events as events
import callcenter.emulator.mcp as mcp
from callcenter.emulator.api_error import bad_request
from callcenter.emulator.ids import short_id
from callcenter.emulator.mcp import McpTurn
from callcenter.emulator.script import ModelCallMcp, ModelSay, ToolCall
from callcenter.emulator.session_state import SessionState

# "Say exactly: X", "Say exactly this to the caller, and nothing else: X", "Say exactly X".
SAY_EXACTLY_AFTER_COLON = re.compile(r"say\s+exactly\b[^:\n]*:\s*(.+)", re.IGNORECASE | re.DOTALL)
SAY_EXACTLY = re.compile(r"say\s+exactly\s*-?\s*(.+)", re.IGNORECASE | re.DOTALL)
QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
GREETING = "Hello, thanks for calling. How can I help you today?"
SILENCE_PROMPT = "Are you still there?"


@dataclass(frozen=True)
class Plan:
    """What one response will contain: an MCP turn, a message, then function calls (each maybe)."""

    text: str | None
    calls: tuple[ToolCall, ...] = ()
    mcp: McpTurn | None = None


@dataclass(eq=False)
class BargeIn:
    """The caller's wish to speak over the next audio response; ``done`` once it has."""

    item_id: str
    done: asyncio.Future[None]


@dataclass(eq=False)
class Response:
    """A response being generated."""

    id: str
    in_band: bool
    audio: bool
    modalities: list[str]
    metadata: dict[str, Any] | None
    output: list[dict[str, Any]] = field(default_factory=list)
    said: str = ""
    audio_started: bool = False
    cancel_reason: str | None = None
    barge_in: BargeIn | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class _Interrupted(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class Model:
    """Generates the responses of one call's session, acting on its shared state."""

    def __init__(self, state: SessionState) -> None:
        self._state = state
        self.active: Response | None = None
        self.playing: dict[str, asyncio.TimerHandle | None] = {}
        self.barge_in: BargeIn | None = None
        self._running: dict[str, Response] = {}

    def create(
        self, params: Mapping[str, Any], event_id: str | None, *, automatic: bool = False
    ) -> None:
        """Start a response (``automatic``: one the server starts after a caller's turn)."""
        conv = self._state
        in_band = params.get("conversation", "auto") != "none"
        if in_band and self.active is not None:
            if not automatic:
                message = (
                    f"Conversation already has an active response in progress: {self.active.id}. "
                    "Wait until the response is finished before creating a new one."
                )
                problem = bad_request(message, "conversation_already_has_active_response")
                conv.emit(events.error(problem, event_id))
            return
        modalities = list(params.get("output_modalities") or conv.session["output_modalities"])
        response = Response(
            short_id("resp"), in_band, "audio" in modalities, modalities, params.get("metadata")
        )
        plan = self._plan(params, in_band)
        self._running[response.id] = response
        if in_band:
            self.active = response
        conv.emit(events.response_created(self._object(response, "in_progress")))
        conv.spawn(self._run(response, plan, conv.response_delay(automatic=automatic)))

    def cancel(self, response_id: str | None, event_id: str | None) -> None:
        """``response.cancel``: stop the active (or the named) response."""
        target = self._running.get(response_id) if response_id else self.active
        if target is None:
            message = "Cancellation failed: no active response found."
            self._state.emit(
                events.error(bad_request(message, "response_cancel_not_active"), event_id)
            )
            return
        target.cancel_reason = "client_cancelled"
        target.wake.set()

    def request_barge_in(self, item_id: str) -> asyncio.Future[None]:
        """Have the caller speak over the next (or current) in-band audio response."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.barge_in = BargeIn(item_id, done)
        if self.active is not None:
            self.active.wake.set()
        return done

    def clear_playback(self) -> None:
        """Stop the audio still playing (``output_audio_buffer.clear``)."""
        for response_id, timer in list(self.playing.items()):
            if timer is not None:
                timer.cancel()
            del self.playing[response_id]
            self._state.emit(events.output_audio_buffer("cleared", response_id))

    def stop(self) -> None:
        """The call is over: no more playback events."""
        for timer in self.playing.values():
            if timer is not None:
                timer.cancel()
        self.playing.clear()

    # -- one response ------------------------------------------------------------------------

    async def _run(self, response: Response, plan: Plan, delay: float) -> None:
        try:
            if delay > 0:  # the model's own latency; a cancel during it takes effect after
                await asyncio.sleep(delay)
                self._check(response)
            index = 0
            if plan.mcp is not None:
                await self._mcp(response, index, plan.mcp)
                index += 1
            if plan.text is not None:
                await self._message(response, index, plan.text)
                index += 1
            for call in plan.calls:
                await self._function_call(response, index, call)
                index += 1
        except _Interrupted as stop:
            self._cut(response, stop.reason)
            return
        self._finish(response, "completed")

    async def _message(self, response: Response, index: int, text: str) -> None:
        conv, rid, audio = self._state, response.id, response.audio
        item_id = short_id("item")
        item = events.assistant_item(item_id, "in_progress", None, audio=audio)
        response.output.append(item)
        conv.emit(events.output_item_added(rid, index, item))
        previous = conv.add_item(item) if response.in_band else None
        if response.in_band:
            conv.emit(events.item_added(item, previous))
        conv.emit(
            events.content_part("response.content_part.added", rid, item_id, index, "", audio=audio)
        )
        if audio and not response.audio_started:
            response.audio_started = True
            self.playing[rid] = None
            conv.emit(events.output_audio_buffer("started", rid))
        for delta in events.chunks(text):
            conv.emit(events.text_delta(rid, item_id, index, delta, audio=audio))
            response.said += delta
            await self._pace(response)
        conv.emit(events.text_done(rid, item_id, index, text, audio=audio))
        conv.emit(
            events.content_part(
                "response.content_part.done", rid, item_id, index, text, audio=audio
            )
        )
        final = events.assistant_item(item_id, "completed", text, audio=audio)
        response.output[index] = final
        conv.emit(events.output_item_done(rid, index, final))
        if response.in_band:
            conv.replace_item(final)
            conv.emit(events.item_done(final, previous))

    async def _function_call(self, response: Response, index: int, call: ToolCall) -> None:
        conv, rid = self._state, response.id
        item_id, call_id = short_id("item"), short_id("call", 16)
        arguments = json.dumps(dict(call.arguments))
        item = events.function_call_item(item_id, call_id, call.name, "", "in_progress")
        response.output.append(item)
        conv.emit(events.output_item_added(rid, index, item))
        previous = conv.add_item(item) if response.in_band else None
        if response.in_band:
            conv.emit(events.item_added(item, previous))
        for start in range(0, len(arguments), 16):
            delta = arguments[start : start + 16]
            conv.emit(events.arguments_delta(rid, item_id, index, call_id, delta))
            await self._pace(response)
        conv.emit(events.arguments_done(rid, item_id, index, call_id, call.name, arguments))
        final = events.function_call_item(item_id, call_id, call.name, arguments, "completed")
        response.output[index] = final
        response.said += arguments
        conv.emit(events.output_item_done(rid, index, final))
        if response.in_band:
            conv.replace_item(final)
            conv.emit(events.item_done(final, previous))

    async def _mcp(self, response: Response, index: int, turn: McpTurn) -> None:
        """An approval request, or an MCP call the API runs itself (see ``emulator.mcp``)."""
        conv, rid = self._state, response.id
        if turn.ask:
            running = final = mcp.approval_request_item(mcp.new_request_id(), turn.step)
            conv.mcp.requested[running["id"]] = turn.step
        else:
            item_id = short_id("item")
            running = mcp.call_item(item_id, turn, done=False)
            final = mcp.call_item(item_id, turn, done=True)
        response.output.append(running)
        conv.emit(events.output_item_added(rid, index, running))
        previous = conv.add_item(running) if response.in_band else None
        if response.in_band:
            conv.emit(events.item_added(running, previous))
        if not turn.ask:
            failed = turn.step.error is not None
            progress = mcp.progress_events(
                rid, running["id"], index, running["arguments"], failed=failed
            )
            for event in progress:
                conv.emit(event)
            await self._pace(response)
        response.output[index] = final
        conv.emit(events.output_item_done(rid, index, final))
        if response.in_band:
            conv.replace_item(final)
            conv.emit(events.item_done(final, previous))

    async def _pace(self, response: Response) -> None:
        interval = self._state.pacing.delta_interval
        if interval > 0 and not response.wake.is_set():
            try:
                await asyncio.wait_for(response.wake.wait(), interval)
            except TimeoutError:
                pass
        self._check(response)

    def _check(self, response: Response) -> None:
        if response.cancel_reason is not None:
            raise _Interrupted(response.cancel_reason)
        barge_in = self.barge_in
        if barge_in is None or not (response.in_band and response.audio_started):
            return
        self.barge_in = None
        self._state.emit(events.speech_started(barge_in.item_id, self._state.audio_ms()))
        vad = self._state.turn_detection() or {}
        if vad.get("interrupt_response", True):
            response.barge_in = barge_in
            raise _Interrupted("turn_detected")
        response.wake.clear()
        barge_in.done.set_result(None)

    def _cut(self, response: Response, reason: str) -> None:
        if response.audio_started and response.id in self.playing:
            del self.playing[response.id]
            self._state.emit(events.output_audio_buffer("cleared", response.id))
        for index, item in enumerate(response.output):
            if item["status"] == "in_progress":
                partial = {**item, "status": "incomplete"}
                if item["type"] == "message":
                    partial = events.assistant_item(
                        item["id"], "incomplete", response.said, audio=response.audio
                    )
                response.output[index] = partial
                if response.in_band:
                    self._state.replace_item(partial)
        self._finish(response, "cancelled", reason)
        if response.barge_in is not None:
            response.barge_in.done.set_result(None)

    def _finish(self, response: Response, status: str, reason: str | None = None) -> None:
        conv = self._state
        self._running.pop(response.id, None)
        if self.active is response:
            self.active = None
        usage = events.usage(120 + 40 * len(conv.items), response.said, audio=response.audio)
        conv.emit(events.response_done(self._object(response, status, usage, reason)))
        conv.emit(events.rate_limits_updated())
        if status == "completed" and response.id in self.playing:
            pacing = conv.pacing
            seconds = pacing.playback_seconds + pacing.playback_per_char * len(response.said)
            loop = asyncio.get_running_loop()
            self.playing[response.id] = loop.call_later(seconds, self._stopped, response.id)

    def _stopped(self, response_id: str) -> None:
        if self.playing.pop(response_id, None) is not None:
            self._state.emit(events.output_audio_buffer("stopped", response_id))

    def _object(
        self,
        response: Response,
        status: str,
        usage: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        return events.response_object(
            response.id,
            status=status,
            output=response.output,
            conversation_id=self._state.id if response.in_band else None,
            session=self._state.session,
            modalities=response.modalities,
            metadata=response.metadata,
            usage=usage,
            reason=reason,
        )

    # -- what to say -------------------------------------------------------------------------

    def _plan(self, params: Mapping[str, Any], in_band: bool) -> Plan:
        conv = self._state
        if not in_band:
            if conv.out_of_band_replies:
                return Plan(conv.out_of_band_replies.popleft().text)
            return Plan(self._default_text(params))
        turn, denied = conv.mcp.take_answered()
        if turn is not None:
            return Plan(f"Here is what I found: {turn.step.output}", mcp=turn)
        if denied is not None:
            return Plan(f"I'm sorry, I can't use {denied} right now.")
        if conv.replies:
            reply = conv.replies.popleft()
            if isinstance(reply, ModelSay):
                return Plan(reply.text)
            if isinstance(reply, ModelCallMcp):
                turn = conv.mcp.turn_for(reply)
                return Plan(None if turn.ask else f"Here is what I found: {reply.output}", mcp=turn)
            return Plan(reply.say, reply.calls())
        return Plan(self._default_text(params))

    def _default_text(self, params: Mapping[str, Any]) -> str:
        conv = self._state
        exact = say_exactly(params.get("instructions"))
        if exact is not None:
            return exact
        last = conv.items[-1] if conv.items else None
        if last is not None and last["type"] == "function_call_output":
            return f"Here is what I found: {last['output']}"
        if last is not None and last.get("role") == "user" and last["id"] in conv.transcripts:
            heard = conv.transcripts[last["id"]]
            return f"You said: {heard}" if heard else SILENCE_PROMPT
        return say_exactly(conv.session.get("instructions")) or GREETING


def say_exactly(instructions: object) -> str | None:
    """The X of an instruction like ``Say exactly: "X"`` (quoted, or up to the line's end)."""
    if not isinstance(instructions, str):
        return None
    found = SAY_EXACTLY_AFTER_COLON.search(instructions) or SAY_EXACTLY.search(instructions)
    if found is None:
        return None
    text = found.group(1).strip()
    closing = QUOTES.get(text[:1])
    if closing is not None and closing in text[1:]:
        return text[1 : text.index(closing, 1)]
    return text.splitlines()[0].strip()
