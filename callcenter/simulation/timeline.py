"""What happened on a call, as lines a person reads: ``+1.25s  caller  says "Hi"``.

Pure rendering. The moments of a call are the emulator's own records (webhook attempts,
calls-endpoint requests, both sides of the sideband) plus a few things an observer notes
(the call placed, the sideband closed, the call over, notes of the simulator), each with
the wall-clock time it happened. :class:`Timeline` turns them into lines in the order it is
given them, relative to the moment the call was placed: tool calls with their arguments and
the output sent back, the controller's lines (greeting, handoff line) and its escalations
(the out-of-band request for a handoff summary, and the summary), the REFER with its
ticket.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from callcenter.call.escalation import TICKET_HEADER
from callcenter.call.responses import KEY
from callcenter.emulator import RestRequest, WebhookAttempt
from callcenter.emulator.responses import say_exactly
from callcenter.errors import SipParseError
from callcenter.simulation.text import clip
from callcenter.sip.invite import parse_uri

__all__ = [
    "CallOver",
    "Moment",
    "Note",
    "Placed",
    "SidebandEvent",
    "SocketClosed",
    "Timeline",
    "interleave",
    "quote",
    "render",
    "ticket_of",
    "tool_call",
    "tool_output",
]

QUOTE_WIDTH = 90
LONG_WIDTH = 150  # tool outputs and the handoff summary: worth reading whole
BUSY = "conversation_already_has_active_response"  # a response.create refused for now
CAUSE_WINDOW = 1.0  # seconds: an escalation this soon after a caller's act follows from it
# What the controller's lines are, by the prefix of the key in a response's metadata.
_LINES = {
    "greeting": "the greeting",
    "handoff": "the handoff line",
    "goodbye": "goodbye",
    "notice": "a one-moment line",
}
# The server events that answer each client event (an error answers any of them).
_ANSWERS = {
    "response.create": "response.created",
    "response.cancel": "response.done",
    "conversation.item.create": "conversation.item.added",
    "conversation.item.delete": "conversation.item.deleted",
    "conversation.item.retrieve": "conversation.item.retrieved",
    "conversation.item.truncate": "conversation.item.truncated",
    "session.update": "session.updated",
    "input_audio_buffer.clear": "input_audio_buffer.cleared",
    "input_audio_buffer.commit": "input_audio_buffer.committed",
    "output_audio_buffer.clear": "output_audio_buffer.cleared",
}


@dataclass(frozen=True)
class Placed:
    """The emulated caller dialled."""

    at: float
    to_number: str
    from_number: str
    caller_name: str | None = None


@dataclass(frozen=True)
class SidebandEvent:
    """An event on the call's sideband: sent by the controller, or by OpenAI (the emulator)."""

    at: float
    sent_by: Literal["controller", "openai"]
    event: Mapping[str, Any]


@dataclass(frozen=True)
class SocketClosed:
    """A sideband socket of the call closed."""

    at: float


@dataclass(frozen=True)
class CallOver:
    """The call reached a final state (``state``, ended by ``ended_by``)."""

    at: float
    state: str
    ended_by: str | None


@dataclass(frozen=True)
class Note:
    """Something the simulator did or noticed."""

    at: float
    who: str
    text: str


Moment = Placed | WebhookAttempt | RestRequest | SidebandEvent | SocketClosed | CallOver | Note


class Timeline:
    """Lines for one call's moments, given in order.

    It remembers which tool each call id is, which responses are out of band (and which of
    those is a handoff summary), and the caller's last act, which an escalation right after
    it is put down to.
    """

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self._tools: dict[str, str] = {}
        self._aside: dict[str, str] = {}  # out-of-band response id -> its key's prefix
        self._cause: tuple[float, str] | None = None
        self._asked: set[object] = set()  # the keys of the responses the controller asked for

    def line(self, moment: Moment) -> str | None:
        """The line for ``moment``, or None if it is not worth a line."""
        found = self._describe(moment)
        if found is None:
            return None
        who, what = found
        return f"  {moment.at - self.origin:+7.2f}s  {who:<10}  {what}"

    def _describe(self, moment: Moment) -> tuple[str, str] | None:
        match moment:
            case Placed(to_number=to, from_number=caller, caller_name=name):
                named = f" ({name})" if name else ""
                return "caller", f"dials {to} from {caller}{named}"
            case WebhookAttempt():
                return "openai", _webhook(moment)
            case RestRequest():
                return "controller", _rest(moment)
            case SidebandEvent(at=at, sent_by="controller", event=event):
                return self._client_event(event, at)
            case SidebandEvent(at=at, event=event):
                return self._server_event(event, at)
            case SocketClosed():
                return "openai", "sideband closed"
            case CallOver(state=state, ended_by=ended_by):
                return _call_over(state, ended_by)
            case Note(who=who, text=text):
                return who, text

    def _client_event(self, event: Mapping[str, Any], at: float) -> tuple[str, str] | None:
        kind = event.get("type")
        if kind == "response.create":
            return "controller", self._response_request(_table(event.get("response")), at)
        if kind == "conversation.item.create":
            item = _table(event.get("item"))
            if item.get("type") == "function_call_output":
                tool = self._tools.get(str(item.get("call_id")), "a tool")
                return (
                    "controller",
                    f"sends the output of {tool}: {tool_output(item.get('output'))}",
                )
            return "controller", f"adds a {item.get('role') or item.get('type')} item"
        if kind == "session.update":
            session = _table(event.get("session"))
            return "controller", f"updates the session ({', '.join(sorted(session)) or 'nothing'})"
        if kind == "response.cancel":
            return "controller", "cancels the reply"
        return None

    def _response_request(self, response: Mapping[str, Any], at: float) -> str:
        asked = response.get("instructions")
        purpose = _purpose(response)
        if response.get("conversation") == "none":
            if purpose == "summary":
                cause = self._cause
                after = f" after {cause[1]}" if cause and at - cause[0] <= CAUSE_WINDOW else ""
                return f"escalates{after}: asks the agent for a handoff summary, out of band"
            return f"asks the agent, out of band: {quote(asked)}" if asked else "asks out of band"
        key = _table(response.get("metadata")).get(KEY)
        again = " again" if key is not None and key in self._asked else ""
        if key is not None:
            self._asked.add(key)
        line = say_exactly(asked)
        if line is not None:
            what = _LINES.get(purpose or "")
            return f"asks the agent{again} to say {what + ': ' if what else ''}{quote(line)}"
        return f"asks the agent: {quote(asked)}" if asked else "asks for a reply"

    def _server_event(self, event: Mapping[str, Any], at: float) -> tuple[str, str] | None:
        kind = event.get("type")
        if kind == "session.created":
            return "controller", "attached the sideband"
        if kind == "response.created":
            response = _table(event.get("response"))
            if response.get("id") and response.get("conversation_id") is None:
                self._aside[str(response["id"])] = _purpose(response) or ""
            return None
        if kind in ("response.output_audio_transcript.done", "response.output_text.done"):
            text = event.get("transcript", event.get("text"))
            aside = self._aside.get(str(event.get("response_id")))
            if aside == "summary":
                return "agent", f"writes the summary: {quote(text, LONG_WIDTH)}"
            if aside is not None:
                return "agent", f"answers out of band: {quote(text)}"
            return "agent", f"says {quote(text)}"
        if kind == "conversation.item.input_audio_transcription.completed":
            transcript = event.get("transcript")
            if not transcript:
                return None
            self._cause = (at, f"the caller said {quote(transcript, QUOTE_WIDTH // 2)}")
            return "caller", f"says {quote(transcript)}"
        if kind == "conversation.item.input_audio_transcription.failed":
            return "caller", "speaks (the transcription failed)"
        if kind == "input_audio_buffer.timeout_triggered":
            self._cause = (at, "the caller stayed silent")
            return "caller", "stays silent"
        if kind == "input_audio_buffer.dtmf_event_received":
            self._cause = (at, f"the caller pressed {event.get('event')}")
            return "caller", f"presses {event.get('event')}"
        if kind == "response.function_call_arguments.done":
            name = str(event.get("name"))
            self._tools[str(event.get("call_id"))] = name
            self._cause = (at, f"the agent called {name}")
            return "agent", f"calls {tool_call(name, event.get('arguments'))}"
        if kind == "output_audio_buffer.cleared":
            return "agent", "is cut off (its audio is cleared)"
        if kind == "error":
            error = _table(event.get("error"))
            if error.get("code") == BUSY:
                return "openai", "refuses it: the agent is still replying (asked again after)"
            if error.get("event_id") is None:  # not about a request of the controller's
                self._cause = (at, "an error event")
            return "openai", f"error: {error.get('message')}"
        return None


def interleave(
    server: Sequence[Mapping[str, Any]], client: Sequence[Mapping[str, Any]], at: float
) -> list[SidebandEvent]:
    """Events of both sides noticed at the same time, in their likely order.

    Each side's events are in order; a client event is placed just before the first
    server event that answers it (``response.create`` before the ``response.created`` with
    its metadata, ``conversation.item.create`` before the ``conversation.item.added`` of an
    item like it…).
    """
    pending = deque(client)
    merged: list[SidebandEvent] = []
    for event in server:
        while pending:
            answer = _ANSWERS.get(str(pending[0].get("type")))
            if answer is not None and not _answers(event, answer, pending[0]):
                break  # not answered yet
            merged.append(SidebandEvent(at, "controller", pending.popleft()))
            if answer is not None:
                break  # one client event per answer
        merged.append(SidebandEvent(at, "openai", event))
    merged += [SidebandEvent(at, "controller", event) for event in pending]
    return merged


def _answers(event: Mapping[str, Any], answer: str, request: Mapping[str, Any]) -> bool:
    """Whether the server ``event`` answers the client ``request`` (whose answer is ``answer``).

    A response the server started itself, or an item of its own, is not the answer to ours.
    """
    kind = event.get("type")
    if kind == "error":
        return True
    if kind != answer:
        return False
    if kind == "response.created":
        asked = _table(request.get("response")).get("metadata")
        return asked is None or _table(event.get("response")).get("metadata") == asked
    if kind == "conversation.item.added":
        sent, added = _table(request.get("item")), _table(event.get("item"))
        same = ("type", "id", "call_id")
        return all(added.get(key) == sent[key] for key in same if sent.get(key) is not None)
    return True


def render(moments: Sequence[Moment], origin: float) -> list[str]:
    """The lines of one call's moments."""
    timeline = Timeline(origin)
    return [line for moment in moments if (line := timeline.line(moment)) is not None]


def quote(text: object, width: int = QUOTE_WIDTH) -> str:
    """``text`` clipped to ``width`` and in double quotes."""
    return json.dumps(clip(str(text), width), ensure_ascii=False)


def tool_call(name: str, arguments: object) -> str:
    """A function call as it reads in code: ``lookup_order(order_id="A-1042")``.

    Arguments that are not a JSON object are shown as they came.
    """
    parsed = _json(arguments)
    if isinstance(parsed, dict):
        shown = ", ".join(
            f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in parsed.items()
        )
    else:
        shown = str(arguments)
    return f"{name}({clip(shown, QUOTE_WIDTH)})"


def tool_output(output: object) -> str:
    """A tool's output: JSON as compact JSON, anything else quoted; clipped to LONG_WIDTH."""
    parsed = _json(output)
    if isinstance(parsed, dict | list):
        return clip(json.dumps(parsed, ensure_ascii=False), LONG_WIDTH)
    return quote(output, LONG_WIDTH)


def ticket_of(uri: str) -> str | None:
    """The ``X-Callcenter-Ticket`` header of a SIP URI, if it has one."""
    try:
        headers = parse_uri(uri).headers
    except SipParseError:
        return None
    wanted = TICKET_HEADER.lower()
    return next((value for name, value in headers if name.lower() == wanted), None)


def _webhook(attempt: WebhookAttempt) -> str:
    copy = f" (copy {attempt.copy + 1})" if attempt.copy else ""
    try_number = f" (attempt {attempt.attempt})" if attempt.attempt > 1 else ""
    if attempt.status is None:
        return f"webhook{copy} got no answer: {attempt.error}{try_number}"
    head = f"webhook{copy} answered {attempt.status} in {attempt.latency * 1000:.0f} ms{try_number}"
    body = attempt.response_body
    if not isinstance(body, dict):
        return head
    if "decision" in body:
        parts = [str(body["decision"])]
        parts += [f"{key} {body[key]}" for key in ("route", "outcome") if body.get(key)]
        return f"{head}: {', '.join(parts)}"
    error = body.get("error")
    if isinstance(error, dict):
        return f"{head}: {error.get('code')}"
    return f"{head}: {body.get('status')}" if body.get("status") else head


def _rest(request: RestRequest) -> str:
    body = request.body if isinstance(request.body, dict) else {}
    if request.status != 200:
        meaning = {404: "the call is gone", 409: "already answered"}.get(request.status, "")
        return f"{request.verb} failed: {request.status}" + (f" ({meaning})" if meaning else "")
    if request.verb == "accept":
        audio = _table(body.get("audio"))
        output = _table(audio.get("output"))
        details = [
            f"model {body.get('model', 'default')}",
            f"voice {output.get('voice', 'default')}",
        ]
        tools = [
            str(tool.get("name")) for tool in body.get("tools") or [] if isinstance(tool, dict)
        ]
        if tools:
            details.append("tools " + ", ".join(tools))
        return "accepts: " + ", ".join(details)
    if request.verb == "reject":
        return f"rejects with {body.get('status_code', 603)}"
    if request.verb == "refer":
        target = str(body.get("target_uri"))
        ticket = ticket_of(target)
        return f"refers the call to {target}" + (f" (ticket {ticket})" if ticket else "")
    return "hangs up"


def _call_over(state: str, ended_by: str | None) -> tuple[str, str] | None:
    if state == "ended" and ended_by == "caller":
        return "caller", "hangs up"
    if state == "missed":
        if ended_by == "caller":
            return "caller", "hangs up while it rings"
        return "openai", "nobody answered: the call rang out"
    return None


def _table(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _purpose(response: Mapping[str, Any]) -> str | None:
    """What the controller asked a response for: the prefix of its key (``handoff-3``)."""
    key = _table(response.get("metadata")).get(KEY)
    if not isinstance(key, str):
        return None
    return key.rpartition("-")[0] or key


def _json(text: object) -> object:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
