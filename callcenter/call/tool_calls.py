"""The tool calls of a call: which run, which are answered, when the model may go on.

The model may call several tools in one response, then waits. Each call gets its
``function_call_output`` as soon as its tool finishes; the one ``response.create`` that
lets the model go on waits until the response is done and every call of it is answered.
Built-ins (``transfer_to_human``, ``end_call``) are answered at once and hand the call to
the session's handoff or ending instead. MCP calls run on OpenAI's side: their approval
requests are answered by policy (:func:`callcenter.call.mcp.approval_decision`) and every call
is recorded. Pure; part of :mod:`callcenter.call.session`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from openai.types.realtime import (
    RealtimeMcpApprovalRequest,
    RealtimeMcpToolCall,
    ResponseFunctionCallArgumentsDoneEvent,
)

from callcenter.call import timers
from callcenter.call.actions import Action, Record, RunTool, ToolDone
from callcenter.call.items import add_item, function_output
from callcenter.call.mcp import McpServer, approval_decision, approval_response_item
from callcenter.call.resume import INTERRUPTED
from callcenter.call.vocabulary import EventKind
from callcenter.tools.registry import (
    BUILTIN_TOOLS,
    END_CALL,
    TRANSFER_TO_HUMAN,
    ToolRegistry,
)
from callcenter.tools.spec import parse_arguments

__all__ = ["Begun", "ToolCalls", "answer_interrupted"]

Builtin = Literal["transfer_to_human", "end_call"]


@dataclass(frozen=True, slots=True)
class Begun:
    """What a new function call needs: ``actions`` now, and maybe a built-in to carry out."""

    actions: list[Action]
    builtin: Builtin | None = None
    reason: str = ""
    target: str | None = None
    failed: bool = False  # answered with an error (bad arguments, unknown tool)


@dataclass(slots=True)
class _Response:
    """The calls of one response."""

    running: set[str] = field(default_factory=set)
    answered: int = 0
    done: bool = False
    builtin: bool = False
    noticed: bool = False


@dataclass(frozen=True, slots=True)
class _Running:
    name: str
    arguments: str
    response_id: str


class ToolCalls:
    """Tool calls by response, for a route's ``tools`` (specs from ``registry``) and ``mcp``."""

    def __init__(
        self,
        tools: Collection[str],
        *,
        registry: ToolRegistry,
        targets: Collection[str],
        default_target: str | None,
        mcp: Collection[McpServer] = (),
    ) -> None:
        self._tools = frozenset(tools)
        self._registry = registry
        self._targets = frozenset(targets)
        self._default_target = default_target
        self._servers = {server.server_label: server for server in mcp}
        self._responses: dict[str, _Response] = {}
        self._running: dict[str, _Running] = {}
        self._approved: set[str] = set()  # approval requests answered
        self._approvals = 0  # answered while a response runs: the model goes on once it is done
        self._mcp_calls: set[str] = set()
        self.finished = 0

    @property
    def idle(self) -> bool:
        """No tool is running."""
        return not self._running

    def running(self) -> dict[str, str]:
        """The function calls whose tool runs now: call_id -> tool name."""
        return {call_id: running.name for call_id, running in self._running.items()}

    def begin(
        self,
        event: ResponseFunctionCallArgumentsDoneEvent,
        event_id: Callable[[], str],
        slow_notice: float,
    ) -> Begun:
        """``response.function_call_arguments.done``: run the tool, or answer at once."""
        response = self._responses.setdefault(event.response_id, _Response())
        name, call_id = event.name, event.call_id
        if name in (TRANSFER_TO_HUMAN, END_CALL) and name in self._tools:
            return self._builtin(response, event, event_id())
        spec = self._registry.get(name) if name in self._tools else None
        if spec is None or name in BUILTIN_TOOLS:
            error = f"there is no tool named {name!r} on this call"
            return self._fail(response, event, error, event_id())
        self._running[call_id] = _Running(name, event.arguments, event.response_id)
        response.running.add(call_id)
        actions: list[Action] = [RunTool(call_id, spec, event.arguments)]
        if len(response.running) == 1 and not response.noticed:
            actions.append(timers.slow(event.response_id, slow_notice))
        return Begun(actions)

    def finish(self, done: ToolDone, event_id: str) -> tuple[list[Action], str] | None:
        """A tool finished: its output and record, and the id of its response."""
        running = self._running.pop(done.call_id, None)
        if running is None:
            return None
        self.finished += 1
        result = done.result
        data = {
            "call_id": done.call_id,
            "name": running.name,
            "arguments": running.arguments,
            "ok": result.ok,
            "output": result.output,
            "error": result.error,
            "duration_ms": round(result.duration * 1000, 3),
        }
        response = self._responses.get(running.response_id)
        if response is not None:
            response.running.discard(done.call_id)
            response.answered += 1
        output = add_item(function_output(done.call_id, result.output), event_id)
        return [output, Record(EventKind.TOOL, data)], running.response_id

    def response_done(self, response_id: str) -> bool:
        """An in-band response is done: True when the model may go on now."""
        approvals, self._approvals = self._approvals, 0
        response = self._responses.get(response_id)
        if response is None:
            return approvals > 0
        response.done = True
        response.answered += approvals
        return self.complete(response_id)

    def approve(
        self, request: RealtimeMcpApprovalRequest, event_id: Callable[[], str]
    ) -> list[Action]:
        """Answer an MCP approval request by policy (once); the model goes on after it."""
        if request.id in self._approved:
            return []
        self._approved.add(request.id)
        approve, reason = approval_decision(self._servers, request)
        item = approval_response_item(request.id, approve, reason)
        data = {
            "server_label": request.server_label,
            "name": request.name,
            "arguments": request.arguments,
            "approve": approve,
            "reason": reason,
        }
        return [add_item(item, event_id()), Record(EventKind.MCP_APPROVAL, data)]

    def go_on_after_response(self) -> None:
        """An approval was answered while a response runs: go on once that one is done."""
        self._approvals += 1

    def mcp_call(self, item: RealtimeMcpToolCall) -> list[Action]:
        """Record a finished MCP call (once), with its output or error."""
        if item.id in self._mcp_calls or (item.output is None and item.error is None):
            return []
        self._mcp_calls.add(item.id)
        data = {
            "server_label": item.server_label,
            "name": item.name,
            "arguments": item.arguments,
            "output": item.output,
            "error": item.error.model_dump() if item.error is not None else None,
        }
        return [Record(EventKind.MCP_CALL, data)]

    def complete(self, response_id: str) -> bool:
        """Whether the response is done and all answered: then the model may go on (once)."""
        response = self._responses.get(response_id)
        if response is None or not response.done or response.running:
            return False
        del self._responses[response_id]
        return response.answered > 0 and not response.builtin

    def needs_notice(self, response_id: str) -> bool:
        """Whether the response's tools still run and the caller was not told to wait yet."""
        response = self._responses.get(response_id)
        if response is None or not response.running or response.noticed:
            return False
        response.noticed = True
        return True

    def _builtin(
        self, response: _Response, event: ResponseFunctionCallArgumentsDoneEvent, event_id: str
    ) -> Begun:
        try:
            arguments = parse_arguments(BUILTIN_TOOLS[event.name], event.arguments)
        except ValueError as error:
            return self._fail(response, event, f"invalid arguments: {error}", event_id)
        reason = str(arguments.get("reason", ""))
        if event.name == END_CALL:
            response.builtin = True
            output = _answer(event.call_id, {"status": "ending the call"}, event_id)
            return Begun([output], "end_call", reason)
        target = arguments.get("target")
        if target is not None and target not in self._targets:
            known = ", ".join(sorted(self._targets))
            return self._fail(response, event, f"unknown target {target!r}; use {known}", event_id)
        if target is None and self._default_target is None:
            problem = "no colleague takes calls from this line; keep helping the caller"
            return self._fail(response, event, problem, event_id)
        response.builtin = True
        output = _answer(event.call_id, {"status": "transferring the call"}, event_id)
        return Begun([output], "transfer_to_human", reason, str(target) if target else None)

    def _fail(
        self,
        response: _Response,
        event: ResponseFunctionCallArgumentsDoneEvent,
        error: str,
        event_id: str,
    ) -> Begun:
        response.answered += 1
        data = {
            "call_id": event.call_id,
            "name": event.name,
            "arguments": event.arguments,
            "ok": False,
            "output": None,
            "error": error,
            "duration_ms": 0.0,
        }
        output = _answer(event.call_id, {"error": error}, event_id)
        return Begun([output, Record(EventKind.TOOL, data)], failed=True)


def _answer(call_id: str, output: dict[str, str], event_id: str) -> Action:
    return add_item(function_output(call_id, output), event_id)


def answer_interrupted(running: Mapping[str, str], event_id: Callable[[], str]) -> list[Action]:
    """After a takeover: answer each call that was running (call_id -> tool name) as
    interrupted, and record it failed."""
    actions: list[Action] = []
    for call_id, name in sorted(running.items()):
        actions.append(_answer(call_id, {"error": INTERRUPTED}, event_id()))
        data = {"call_id": call_id, "name": name, "ok": False, "error": INTERRUPTED}
        actions.append(Record(EventKind.TOOL, data))
    return actions
