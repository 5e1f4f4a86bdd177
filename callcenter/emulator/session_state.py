"""What one call's realtime session holds, shared by the model, the caller and the client events.

A :class:`SessionState` lives from accept to the end of the call, across sideband reattaches:
the session config, the conversation items, the transcripts, the replies a script queued for
the model, the counts of events seen, and the outlets (``emit`` to the sockets, ``spawn`` for
the call's tasks). The model (``responses.Model``) acts on it; the conversation
(``conversation.Conversation``) adds the client events and the model on top of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import callcenter.emulator.events as events
from callcenter.emulator.channel import Channel
from callcenter.emulator.ids import short_id
from callcenter.emulator.mcp import McpCalls
from callcenter.emulator.script import ModelCallMcp, ModelCallTool, ModelSay
from callcenter.emulator.state import CallState, EmulatedCall
from callcenter.observability.logs import bind_call

logger = logging.getLogger(__name__)

Event = dict[str, Any]


@dataclass(frozen=True)
class Pacing:
    """How fast emulated time runs, in seconds. All zero by default (tests); the demo slows it.

    ``delta_interval`` separates a response's text deltas; playback (from
    ``output_audio_buffer.started`` to ``.stopped``) lasts ``playback_seconds`` plus
    ``playback_per_char`` per character said; the caller speaks ``speech_per_char`` per
    character; after our hangup or refer the socket closes ``close_delay`` later.

    The server's own latency: a response the client asked for (``response.create``: the
    greeting, the answer after a tool) begins ``requested_response`` after it was asked; one
    the server starts after the caller's turn begins ``turn_response`` after the caller
    stopped speaking. Each is drawn uniformly from its ``(low, high)`` range by a generator
    seeded with ``seed`` for each call, so that a run is repeatable.
    """

    delta_interval: float = 0.0
    playback_seconds: float = 0.0
    playback_per_char: float = 0.0
    speech_per_char: float = 0.0
    close_delay: float = 0.05
    requested_response: tuple[float, float] = (0.0, 0.0)
    turn_response: tuple[float, float] = (0.0, 0.0)
    seed: int = 0


# What the real service takes, roughly: the greeting's audio starts 300-600 ms after it is
# asked for; a reply's 400-900 ms after the caller stopped speaking.
REALISTIC_SERVER = Pacing(requested_response=(0.3, 0.6), turn_response=(0.4, 0.9))
SERVER_TIMINGS = ("realistic", "none")  # what a call (a scenario) may choose


def with_server_timings(pacing: Pacing, timings: str | None) -> Pacing:
    """``pacing`` with the server latency of ``timings`` (one of ``SERVER_TIMINGS``), if any."""
    if timings is None:
        return pacing
    server = REALISTIC_SERVER if timings == "realistic" else Pacing()
    return dataclasses.replace(
        pacing, requested_response=server.requested_response, turn_response=server.turn_response
    )


class Pulse:
    """Wakes every waiter when anything changed; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Something changed."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds."""
        while not condition():
            await self._event.wait()


class SessionState:
    """The state of one call's realtime session and its outlets to the sockets and tasks."""

    def __init__(self, call: EmulatedCall, channel: Channel, pacing: Pacing) -> None:
        self.call = call
        self.channel = channel
        self.pacing = pacing
        self.id = short_id("conv")
        self.session = events.merge_config(events.default_session(), call.accept_body or {})
        self.items: list[dict[str, Any]] = []
        self.transcripts: dict[str, str] = {}
        self.seen: Counter[str] = Counter()
        self.used: Counter[str] = Counter()
        self.changed = Pulse()
        self.replies: deque[ModelSay | ModelCallTool | ModelCallMcp] = deque()
        self.mcp = McpCalls()
        self.out_of_band_replies: deque[ModelSay] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = time.monotonic()
        self._timings = random.Random(pacing.seed)

    def response_delay(self, *, automatic: bool) -> float:
        """Seconds before a new response begins (see ``Pacing``): the server's latency."""
        low, high = self.pacing.turn_response if automatic else self.pacing.requested_response
        return self._timings.uniform(low, high) if high > 0 else 0.0

    def emit(self, event: Event) -> None:
        """Send a server event and let waiters know; nothing once the call has ended (the
        real server sends nothing after the call is over, whatever was still running)."""
        if self.call.state is CallState.ENDED:
            return
        self.channel.emit(event)
        self.seen[event["type"]] += 1
        self.changed.notify()

    def noticed(self, kind: str) -> None:
        """Something a script may wait for happened off the sideband (a calls-endpoint
        request such as ``refer``, once answered)."""
        self.seen[kind] += 1
        self.changed.notify()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as part of this call (cancelled when the call ends)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._log_failure)
        return task

    def cancel_tasks(self) -> None:
        """Cancel every task still running for this call."""
        for task in list(self._tasks):
            task.cancel()

    def audio_ms(self) -> int:
        """Milliseconds of input audio since the call was answered."""
        return int((time.monotonic() - self._started) * 1000)

    def add_item(self, item: dict[str, Any]) -> str | None:
        """Append ``item`` to the conversation; return the id of the item before it."""
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        return previous

    def replace_item(self, item: dict[str, Any]) -> None:
        """Put the final form of an item in place of its earlier one."""
        for index, existing in enumerate(self.items):
            if existing["id"] == item["id"]:
                self.items[index] = item

    def find_item(self, item_id: str) -> dict[str, Any] | None:
        """The conversation item with this id."""
        return next((item for item in self.items if item["id"] == item_id), None)

    def turn_detection(self) -> dict[str, Any] | None:
        """The session's turn detection (None: manual turns)."""
        found: dict[str, Any] | None = self.session["audio"]["input"].get("turn_detection")
        return found

    def transcription(self) -> dict[str, Any] | None:
        """The session's input transcription (None: the caller's words are not transcribed,
        and no transcription event is sent)."""
        found: dict[str, Any] | None = self.session["audio"]["input"].get("transcription")
        return found

    def _log_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            with bind_call(self.call.call_id):
                logger.error("emulated call task failed", exc_info=task.exception())
