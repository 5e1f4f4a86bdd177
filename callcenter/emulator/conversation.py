"""The sideband session of one accepted call: session config, conversation, client events.

A :class:`Conversation` lives from accept to the end of the call, across sideband
reattaches. It answers client events (``receive``), keeps the conversation items, and holds
the shared state the model (``responses.Model``) and the caller (``caller.CallerScript``)
act on. Everything that changes state and emits events runs without awaiting, so event
sequences never interleave by accident.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from callcenter.emulator import events
from callcenter.emulator.api_error import ApiError, bad_request
from callcenter.emulator.channel import Channel, Socket
from callcenter.emulator.ids import short_id
from callcenter.emulator.mcp import McpCalls
from callcenter.emulator.responses import Model
from callcenter.emulator.schema import check_client_event
from callcenter.emulator.script import ModelCallMcp, ModelCallTool, ModelSay
from callcenter.emulator.state import EmulatedCall

logger = logging.getLogger(__name__)

Event = dict[str, Any]


@dataclass(frozen=True)
class Pacing:
    """How fast emulated time runs, in seconds. All zero by default (tests); the demo slows it.

    ``delta_interval`` separates a response's text deltas; playback (from
    ``output_audio_buffer.started`` to ``.stopped``) lasts ``playback_seconds`` plus
    ``playback_per_char`` per character said; the caller speaks ``speech_per_char`` per
    character; after our hangup or refer the socket closes ``close_delay`` later.
    """

    delta_interval: float = 0.0
    playback_seconds: float = 0.0
    playback_per_char: float = 0.0
    speech_per_char: float = 0.0
    close_delay: float = 0.05


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


class Conversation:
    """The state of one call's realtime session, shared by the model and the caller."""

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
        self.model = Model(self)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = time.monotonic()

    # -- shared helpers ----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Send a server event and let waiters know."""
        self.channel.emit(event)
        self.seen[event["type"]] += 1
        self.changed.notify()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as part of this call (cancelled when the call ends)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._log_failure)
        return task

    def _log_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "emulated call task failed call_id=%s",
                self.call.call_id,
                exc_info=task.exception(),
            )

    def audio_ms(self) -> int:
        """Milliseconds of input audio since the call was answered."""
        return int((time.monotonic() - self._started) * 1000)

    def is_quiet(self) -> bool:
        """No in-band response is being generated and no audio is playing."""
        return self.model.active is None and not self.model.playing

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

    def close(self) -> None:
        """The call is over: stop everything running for it."""
        self.model.stop()
        for task in list(self._tasks):
            task.cancel()

    # -- client events -----------------------------------------------------------------------

    def attached(self, socket: Socket) -> None:
        """A sideband attached: greet it with ``session.created``."""
        self.channel.send_to(socket, events.session_created(self.session))
        self.seen["session.created"] += 1
        self.changed.notify()

    def receive(self, raw: str) -> None:
        """Handle one message from the sideband."""
        try:
            event = json.loads(raw)
        except ValueError:
            problem = bad_request("The message is not valid JSON.", "invalid_json")
            self.emit(events.error(problem))
            return
        if isinstance(event, dict):
            self.call.client_events.append(event)
        event_id = event.get("event_id") if isinstance(event, dict) else None
        event_id = event_id if isinstance(event_id, str) else None
        invalid = check_client_event(event)
        if invalid is not None:
            self.emit(events.error(invalid, event_id))
            return
        self.seen[event["type"]] += 1
        handler = getattr(self, "_on_" + event["type"].replace(".", "_"))
        handler(event, event_id)
        self.changed.notify()

    def _fail(self, problem: ApiError, event_id: str | None) -> None:
        self.emit(events.error(problem, event_id))

    def _on_session_update(self, event: Event, event_id: str | None) -> None:
        self.session = events.merge_config(self.session, event["session"])
        self.emit(events.session_updated(self.session))

    def _on_input_audio_buffer_append(self, event: Event, event_id: str | None) -> None:
        """The caller's audio comes over SIP; audio appended on the sideband is ignored."""

    def _on_input_audio_buffer_commit(self, event: Event, event_id: str | None) -> None:
        message = (
            "Error committing input audio buffer: buffer too small. "
            "Expected at least 100ms of audio."
        )
        self._fail(bad_request(message, "input_audio_buffer_commit_empty"), event_id)

    def _on_input_audio_buffer_clear(self, event: Event, event_id: str | None) -> None:
        self.emit(events.input_cleared())

    def _on_output_audio_buffer_clear(self, event: Event, event_id: str | None) -> None:
        self.model.clear_playback()

    def _on_conversation_item_create(self, event: Event, event_id: str | None) -> None:
        item = {"object": "realtime.item", "status": "completed", **event["item"]}
        item.setdefault("id", short_id("item"))
        if item["type"] == "function_call_output" and not self._has_call(item["call_id"]):
            message = f"No function call with call_id '{item['call_id']}' in the conversation."
            self._fail(bad_request(message, "invalid_value", "item.call_id"), event_id)
            return
        request_id = item.get("approval_request_id")
        if item["type"] == "mcp_approval_response" and not self.mcp.knows(request_id):
            message = f"No MCP approval request with id '{request_id}' in the conversation."
            self._fail(bad_request(message, "invalid_value", "item.approval_request_id"), event_id)
            return
        if self.find_item(item["id"]) is not None:
            message = f"Item with id '{item['id']}' already exists."
            self._fail(bad_request(message, "item_already_exists", "item.id"), event_id)
            return
        after = event.get("previous_item_id")
        if after not in (None, "root") and self.find_item(after) is None:
            message = f"Item with id '{after}' does not exist in the conversation."
            self._fail(bad_request(message, "item_not_found", "previous_item_id"), event_id)
            return
        previous = self._insert(item, after)
        if item["type"] == "function_call_output":
            self.seen["function_call_output"] += 1
        if item["type"] == "mcp_approval_response":
            self.mcp.answer(item)
            self.seen["mcp_approval_response"] += 1
        self.emit(events.item_added(item, previous))
        self.emit(events.item_done(item, previous))

    def _on_conversation_item_delete(self, event: Event, event_id: str | None) -> None:
        item = self._existing(event["item_id"], event_id)
        if item is not None:
            self.items.remove(item)
            self.emit(events.item_deleted(item["id"]))

    def _on_conversation_item_retrieve(self, event: Event, event_id: str | None) -> None:
        item = self._existing(event["item_id"], event_id)
        if item is not None:
            self.emit(events.item_retrieved(item))

    def _on_conversation_item_truncate(self, event: Event, event_id: str | None) -> None:
        item = self._existing(event["item_id"], event_id)
        if item is None:
            return
        if item.get("role") != "assistant":
            message = "Only assistant message items can be truncated."
            self._fail(bad_request(message, "invalid_value", "item_id"), event_id)
            return
        self.emit(events.item_truncated(item["id"], event["content_index"], event["audio_end_ms"]))

    def _on_response_create(self, event: Event, event_id: str | None) -> None:
        self.model.create(event.get("response") or {}, event_id)

    def _on_response_cancel(self, event: Event, event_id: str | None) -> None:
        self.model.cancel(event.get("response_id"), event_id)

    def _insert(self, item: dict[str, Any], after: str | None) -> str | None:
        """Put a client's item after the item ``after`` ("root": first; None: last)."""
        if after is None:
            return self.add_item(item)
        if after == "root":
            self.items.insert(0, item)
            return None
        previous = self.find_item(after)
        self.items.insert(self.items.index(previous) + 1 if previous else len(self.items), item)
        return after

    def _existing(self, item_id: str, event_id: str | None) -> dict[str, Any] | None:
        item = self.find_item(item_id)
        if item is None:
            message = f"Item with id '{item_id}' does not exist in the conversation."
            self._fail(bad_request(message, "item_not_found", "item_id"), event_id)
        return item

    def _has_call(self, call_id: str) -> bool:
        return any(
            item["type"] == "function_call" and item.get("call_id") == call_id
            for item in self.items
        )
