"""When a call goes to a human, and where: triggers, transfer chains, tickets, the summary.

Pure values and functions for :mod:`callcenter.call.session`. :class:`Triggers` counts what the
route's ``escalation`` table puts a limit on (failed tools, silences, error events) and
finds the caller's phrases in transcripts; :func:`transfer_chain` lists the URIs to REFER
to, in order (a target, then its fallbacks); :func:`refer_uri` appends the call's ticket
as a SIP URI header where the target's desk looks calls up by ticket.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from openai.types.realtime import RealtimeResponse
from openai.types.realtime.realtime_response_create_params_param import (
    RealtimeResponseCreateParamsParam,
)

from callcenter.config.loader import Escalation, Target
from callcenter.config.model import DEFAULT_ANSWER_TIMEOUT
from callcenter.sip.invite import add_uri_header, is_transfer_uri, parse_uri

__all__ = [
    "TICKET_HEADER",
    "TRIGGERS",
    "TransferTarget",
    "Trigger",
    "Triggers",
    "refer_uri",
    "summary_request",
    "summary_text",
    "ticket_for",
    "transfer_chain",
]

Trigger = Literal[
    "tool", "phrase", "dtmf", "tool_failures", "silence", "max_length", "errors", "operator"
]
TRIGGERS: Final[tuple[Trigger, ...]] = (
    "tool",  # the model called transfer_to_human
    "phrase",  # the caller asked for a person in words the route lists
    "dtmf",  # the caller pressed a key mapped to a transfer
    "tool_failures",  # N tool calls in a row failed
    "silence",  # N idle timeouts in a row
    "max_length",  # the call lasted the route's max_minutes
    "errors",  # N error events from the server
    "operator",  # an operator asked for the transfer
)
TICKET_HEADER: Final = "X-Callcenter-Ticket"

SUMMARY_INSTRUCTIONS: Final = (
    "Write a note for the colleague who takes over this phone call: who the caller is (if "
    "known), what they want, what was already tried or found, and what is still open. Two "
    "to four short sentences, plain text, no greeting."
)


class Triggers:
    """The counting triggers of one call: streaks of failed tools and silences, errors, phrases.

    Each ``on_…`` method returns the trigger the new fact fires, if any. A route without an
    ``escalation`` table never fires them.
    """

    def __init__(self, escalation: Escalation | None) -> None:
        self._escalation = escalation
        self._phrases = _phrase_pattern(escalation.phrases if escalation else ())
        self.failed_tools = 0
        self.silences = 0
        self.errors = 0

    @property
    def max_length_seconds(self) -> float | None:
        """How long the call may last before it escalates, if the route limits it."""
        minutes = self._escalation.max_minutes if self._escalation else None
        return minutes * 60 if minutes is not None else None

    def on_tool_result(self, ok: bool) -> Trigger | None:
        """A tool call finished; ``max_tool_failures`` failures in a row escalate."""
        self.failed_tools = 0 if ok else self.failed_tools + 1
        limit = self._escalation.max_tool_failures if self._escalation else None
        return "tool_failures" if limit is not None and self.failed_tools >= limit else None

    def on_silence(self) -> Trigger | None:
        """The idle timeout fired; ``max_silences`` in a row escalate."""
        self.silences += 1
        limit = self._escalation.max_silences if self._escalation else None
        return "silence" if limit is not None and self.silences >= limit else None

    def on_speech(self) -> None:
        """The caller spoke: the silence streak ends."""
        self.silences = 0

    def on_error(self) -> Trigger | None:
        """The server sent an ``error`` event; ``max_errors`` of them escalate."""
        self.errors += 1
        limit = self._escalation.max_errors if self._escalation else None
        return "errors" if limit is not None and self.errors >= limit else None

    def phrase_in(self, transcript: str) -> str | None:
        """The route's phrase the caller said (whole words, any case), if any."""
        if self._phrases is None:
            return None
        found = self._phrases.search(transcript)
        return found.group(0) if found else None


def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for every phrase: its words in order, whole words, any spacing or case."""
    alternatives = [
        r"\s+".join(re.escape(word) for word in phrase.split()) for phrase in phrases if phrase
    ]
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """One place to REFER a call to: a configured target (``name``) or a plain URI."""

    uri: str
    name: str | None = None
    ticket_header: bool = False
    answer_timeout: float = DEFAULT_ANSWER_TIMEOUT  # s for the call to leave after the REFER

    def __str__(self) -> str:
        return self.name or self.uri


def transfer_chain(targets: Mapping[str, Target], first: str) -> tuple[TransferTarget, ...]:
    """``first`` (a target name or URI) and then its fallbacks, each once, in order.

    Raises ValueError when ``first`` is neither a configured target nor a transfer URI.
    """
    chain: list[TransferTarget] = []
    seen: set[str] = set()
    current: str | None = first
    while current is not None and current not in seen:
        seen.add(current)
        target = targets.get(current)
        if target is not None:
            chain.append(
                TransferTarget(target.uri, target.name, target.ticket_header, target.answer_timeout)
            )
            current = target.fallback
        elif is_transfer_uri(current):
            chain.append(TransferTarget(current))
            current = None
        elif not chain:
            raise ValueError(f"no target named {current!r} and not a tel:, sip: or sips: URI")
        else:
            current = None
    return tuple(chain)


def refer_uri(target: TransferTarget, ticket: str | None) -> str:
    """The URI to REFER to: with the ticket as ``X-Callcenter-Ticket`` where the target wants it.

    Only ``sip:``/``sips:`` URIs carry headers; a ``tel:`` target is referred to as it is.
    """
    if ticket is None or not target.ticket_header or parse_uri(target.uri).scheme == "tel":
        return target.uri
    return add_uri_header(target.uri, TICKET_HEADER, ticket)


def ticket_for(call_id: str, number: int = 1) -> str:
    """The ticket of a call's ``number``-th escalation: short, stable, easy to read out."""
    digest = hashlib.sha256(f"{call_id}#{number}".encode()).hexdigest()[:10].upper()
    return f"CC-{digest}"


def summary_request() -> RealtimeResponseCreateParamsParam:
    """An out-of-band, text-only response asking the model for the handoff note."""
    return {
        "conversation": "none",
        "output_modalities": ["text"],
        "instructions": SUMMARY_INSTRUCTIONS,
        "tool_choice": "none",
    }


def summary_text(response: RealtimeResponse) -> str | None:
    """The text of a finished summary response, or None if it has none."""
    parts: list[str] = []
    for item in response.output or ():
        if item.type != "message":
            continue
        for content in item.content or ():
            text = getattr(content, "text", None) or getattr(content, "transcript", None)
            if isinstance(text, str) and text.strip():
                parts.append(text.strip())
    return " ".join(parts) or None
