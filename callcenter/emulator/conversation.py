"""The sideband session of one accepted call: its state, its model, and the client events.

A :class:`Conversation` is the call's :class:`~callcenter.emulator.session_state.SessionState`
with the model (``responses.Model``) that generates its responses, and the answers to the
client events (``receive``). The caller (``caller.CallerScript``) acts on it. Everything that
changes state and emits events runs without awaiting, so event sequences never interleave by
accident.
"""

from __future__ import annotations

import json
from typing import Any

import callcenter.emulator.events as events
from callcenter.emulator.api_error import ApiError, bad_request
from callcenter.emulator.channel import Channel, Socket
from callcenter.emulator.ids import short_id
from callcenter.emulator.responses import Model
from callcenter.emulator.schema import check_client_event
from callcenter.emulator.session_state import Pacing, SessionState
from callcenter.emulator.state import EmulatedCall

__all__ = ["Conversation"]

Event = dict[str, Any]


class Conversation(SessionState):
    """One call's realtime session: the shared state, the model, and the client events."""

    def __init__(self, call: EmulatedCall, channel: Channel, pacing: Pacing) -> None:
        super().__init__(call, channel, pacing)
        self.model = Model(self)

    def is_quiet(self) -> bool:
        """No in-band response is being generated and no audio is playing."""
        return self.model.active is None and not self.model.playing

    def close(self) -> None:
        """The call is over: stop everything running for it."""
        self.model.stop()
        self.cancel_tasks()

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
        refused = self._refused_update(event["session"])
        if refused is not None:
            self._fail(refused, event_id)
            return
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

    def _refused_update(self, update: Event) -> ApiError | None:
        """What the real API refuses mid-session: another model, or tracing changed once set
        (users report both as ``invalid_request_error``s naming the parameter)."""
        model = update.get("model")
        if model is not None and model != self.session.get("model"):
            message = "Cannot update a conversation's model."
            return bad_request(message, "cannot_update_model", "session.model")
        tracing = update.get("tracing", self.session.get("tracing"))
        if self.session.get("tracing") is not None and tracing != self.session.get("tracing"):
            message = "Cannot update a conversation's tracing configuration once it is set."
            return bad_request(message, "cannot_update_tracing", "session.tracing")
        return None

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
