"""The emulated caller: runs a call's script, step by step, while a sideband is attached.

A caller's turn is what server VAD reports on the sideband: ``speech_started`` →
``speech_stopped`` → ``committed`` → the user item (added, done) → the input transcription
(before or after the model's automatic response starts, or failed). The script pauses
while no sideband is attached and resumes with the next step after a reattach.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import callcenter.emulator.events as events
import callcenter.emulator.mcp as mcp
from callcenter.emulator.api_error import ApiError
from callcenter.emulator.ids import short_id
from callcenter.emulator.script import (
    DropSocket,
    Dtmf,
    HangUp,
    McpListFailed,
    ModelCallMcp,
    ModelCallTool,
    ModelSay,
    RateLimits,
    Say,
    ServerError,
    Silence,
    Step,
    Wait,
    WaitFor,
)
from callcenter.observability.logs import set_call

if TYPE_CHECKING:
    from callcenter.emulator.conversation import Conversation

logger = logging.getLogger(__name__)


class CallerScript:
    """Plays one call's script against its conversation."""

    def __init__(
        self, conversation: Conversation, steps: Sequence[Step], hang_up: Callable[[], None]
    ) -> None:
        self._conv = conversation
        self._steps = tuple(steps)
        self._hang_up = hang_up
        self.position = 0
        self._mark: Counter[str] = Counter()
        self._previous_mark: Counter[str] = Counter()

    async def run(self) -> None:
        """Run the remaining steps, each once a sideband is attached."""
        set_call(self._conv.call.call_id)
        while self.position < len(self._steps):
            await self._conv.channel.attached.wait()
            step = self._steps[self.position]
            self.position += 1
            if isinstance(step, Say | Silence | WaitFor):
                self._queue_replies()
            self._previous_mark, self._mark = self._mark, Counter(self._conv.seen)
            try:
                await self._do(step)
            except TimeoutError:
                problem = f"step {self.position - 1}: {step!r} timed out"
                self._conv.call.script_errors.append(problem)
                logger.warning("script stopped", extra={"reason": problem})
                return

    def _queue_replies(self) -> None:
        """Queue the model steps right after a turn or a wait: they answer what comes of it."""
        while self.position < len(self._steps):
            step = self._steps[self.position]
            if not isinstance(step, ModelSay | ModelCallTool | ModelCallMcp):
                return
            self._queue(step)
            self.position += 1

    def _queue(self, step: ModelSay | ModelCallTool | ModelCallMcp) -> None:
        if isinstance(step, ModelSay) and step.out_of_band:
            self._conv.out_of_band_replies.append(step)
        else:
            self._conv.replies.append(step)

    async def _do(self, step: Step) -> None:
        conv = self._conv
        match step:
            case Say():
                await self._say(step)
            case ModelSay() | ModelCallTool() | ModelCallMcp():
                self._queue(step)
            case Dtmf(key=key):
                conv.emit(events.dtmf_received(key))
            case Silence():
                await self._silence(step)
            case Wait(seconds=seconds):
                await asyncio.sleep(seconds)
            case WaitFor():
                await self._wait_for(step)
            case HangUp():
                self._hang_up()
            case DropSocket(code=code):
                conv.channel.close_all(code)
            case ServerError(message=message, code=code, type=kind):
                conv.emit(events.error(ApiError(500, message, code=code, type=kind)))
            case McpListFailed(server_label=label):
                item, failed = mcp.list_tools_failed_events(label)
                conv.emit(events.item_added(item, conv.add_item(item)))
                for event in failed:
                    conv.emit(event)
            case RateLimits(requests_remaining=requests, tokens_remaining=tokens):
                conv.emit(events.rate_limits_updated(requests, tokens))

    async def _say(self, step: Say) -> None:
        conv = self._conv
        item_id = short_id("item")
        if step.barge_in:
            await conv.model.request_barge_in(item_id)
        else:
            await conv.changed.wait_until(conv.is_quiet)
            conv.emit(events.speech_started(item_id, conv.audio_ms()))
        speaking = conv.pacing.speech_per_char * len(step.text)
        if speaking > 0:
            await asyncio.sleep(speaking)
        conv.emit(events.speech_stopped(item_id, conv.audio_ms()))
        self._commit(item_id, step.text, step.transcription)

    async def _silence(self, step: Silence) -> None:
        """Server VAD reports a silence only when ``idle_timeout_ms`` is set (semantic VAD
        and manual turns never do): otherwise the caller is just quiet for ``ms``."""
        conv = self._conv
        await conv.changed.wait_until(conv.is_quiet)
        vad = conv.turn_detection() or {}
        idle_ms = vad.get("idle_timeout_ms") if vad.get("type") == "server_vad" else None
        if idle_ms is None:
            await asyncio.sleep((step.ms or 0) / 1000)
            return
        silent_ms = step.ms or idle_ms
        item_id, end = short_id("item"), conv.audio_ms()
        conv.emit(events.timeout_triggered(item_id, max(0, end - silent_ms), end))
        self._commit(item_id, "", "before")

    async def _wait_for(self, step: WaitFor) -> None:
        conv, kind = self._conv, step.kind
        baseline = max(self._previous_mark[kind], conv.used[kind])
        async with asyncio.timeout(step.timeout):
            await conv.changed.wait_until(lambda: conv.seen[kind] > baseline)
        conv.used[kind] = baseline + 1

    def _commit(self, item_id: str, transcript: str, transcription: str) -> None:
        conv = self._conv
        item = events.user_audio_item(item_id)
        previous = conv.add_item(item)
        conv.emit(events.committed(item_id, previous))
        conv.emit(events.item_added(item, previous))
        conv.emit(events.item_done(item, previous))
        transcribed = conv.transcription() is not None
        if transcription == "failed" and transcribed:
            conv.emit(events.transcription_failed(item_id))
        elif transcription != "failed":
            conv.transcripts[item_id] = transcript
        if transcription == "before" and transcribed:
            self._transcribe(item_id, transcript)
        vad = conv.turn_detection()
        if vad is not None and vad.get("create_response", True):
            conv.model.create({}, None, automatic=True)
        if transcription == "after" and transcribed:
            self._transcribe(item_id, transcript)

    def _transcribe(self, item_id: str, transcript: str) -> None:
        if transcript:
            for delta in events.chunks(transcript):
                self._conv.emit(events.transcription_delta(item_id, delta))
        self._conv.emit(events.transcription_completed(item_id, transcript))
