"""The emulated model's MCP tool calls, which the Realtime API runs itself.

A ``ModelCallMcp`` step makes the model's next response call an MCP tool. With approval
(callcenter declares every server with ``require_approval: "always"``) that response ends
with an ``mcp_approval_request`` item; the client answers with an ``mcp_approval_response``
item and a ``response.create``, and that next response runs the call (its ``output`` comes
back in an ``mcp_call`` item) if it was approved, then says what came of it. Without
approval the call runs in the first response. Events and items are shaped like the SDK's
(``response.mcp_call_arguments.done``, ``response.mcp_call.in_progress|completed``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import callcenter.emulator.events as events
from callcenter.emulator.ids import short_id
from callcenter.emulator.script import ModelCallMcp

Event = dict[str, Any]


@dataclass(frozen=True)
class McpTurn:
    """What a response does with MCP: ask for approval, or run the call (maybe approved)."""

    step: ModelCallMcp
    approval_request_id: str | None = None  # the approved request this call answers
    ask: bool = False


@dataclass
class McpCalls:
    """The approval requests of one conversation and the client's answers to them."""

    requested: dict[str, ModelCallMcp] = field(default_factory=dict)
    answers: dict[str, bool] = field(default_factory=dict)

    def turn_for(self, step: ModelCallMcp) -> McpTurn:
        """The turn a new ``ModelCallMcp`` reply gives: a request first, if it needs one."""
        return McpTurn(step, ask=step.approval)

    def knows(self, request_id: object) -> bool:
        """Whether ``request_id`` names an approval request of this conversation."""
        return request_id in self.requested

    def answer(self, item: dict[str, Any]) -> None:
        """The client's ``mcp_approval_response`` item."""
        self.answers[item["approval_request_id"]] = bool(item["approve"])

    def take_answered(self) -> tuple[McpTurn | None, str | None]:
        """The oldest answered request: (the call to run if approved, else the denied tool)."""
        for request_id, approve in list(self.answers.items()):
            step = self.requested.pop(request_id, None)
            del self.answers[request_id]
            if step is None:
                continue
            if approve:
                return McpTurn(step, request_id), None
            return None, step.name
        return None, None


def approval_request_item(item_id: str, step: ModelCallMcp) -> dict[str, Any]:
    """An ``mcp_approval_request`` item for ``step``."""
    return {
        "id": item_id,
        "type": "mcp_approval_request",
        "server_label": step.server_label,
        "name": step.name,
        "arguments": json.dumps(dict(step.arguments)),
    }


def call_item(item_id: str, turn: McpTurn, *, done: bool) -> dict[str, Any]:
    """An ``mcp_call`` item: without output while it runs, with it once ``done``."""
    step = turn.step
    item: dict[str, Any] = {
        "id": item_id,
        "type": "mcp_call",
        "server_label": step.server_label,
        "name": step.name,
        "arguments": json.dumps(dict(step.arguments)),
        "approval_request_id": turn.approval_request_id,
    }
    if done and step.error is not None:
        item["output"] = None
        item["error"] = {"type": "tool_execution_error", "message": step.error}
    elif done:
        item["output"] = step.output
        item["error"] = None
    return item


def progress_events(
    response_id: str, item_id: str, index: int, arguments: str, *, failed: bool = False
) -> list[Event]:
    """The events of an MCP call running inside a response, up to its completion (or
    ``response.mcp_call.failed``)."""
    end = "response.mcp_call.failed" if failed else "response.mcp_call.completed"
    return [
        events.event(
            "response.mcp_call_arguments.done",
            response_id=response_id,
            item_id=item_id,
            output_index=index,
            arguments=arguments,
        ),
        events.event("response.mcp_call.in_progress", item_id=item_id, output_index=index),
        events.event(end, item_id=item_id, output_index=index),
    ]


def list_tools_failed_events(server_label: str) -> tuple[dict[str, Any], list[Event]]:
    """The ``mcp_list_tools`` item of a server whose tools could not be listed, and the
    events that say so (``mcp_list_tools.in_progress``, then ``mcp_list_tools.failed``)."""
    item_id = short_id("mcpl")
    item = {"id": item_id, "type": "mcp_list_tools", "server_label": server_label, "tools": []}
    return item, [
        events.event("mcp_list_tools.in_progress", item_id=item_id),
        events.event("mcp_list_tools.failed", item_id=item_id),
    ]


def new_request_id() -> str:
    """The id of a new approval request item."""
    return short_id("mcpr")
