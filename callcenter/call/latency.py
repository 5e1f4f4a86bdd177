"""The caller's wait, measured from sideband events: time to greeting and per turn. Pure.

A :class:`LatencyTracker` is fed every server event with its arrival time (monotonic
seconds, from the executor's clock) and told when the call's function tools start and
finish; it reads no clock. It measures two waits:

- the **greeting**: from the accept sent to the greeting response's first audio;
- each **turn**: from ``input_audio_buffer.speech_stopped`` to the next audio, with the time
  a function tool of ours ran inside the turn kept apart (``tool_ms``), so that what is left
  is the model's own latency.

"Audio" is ``output_audio_buffer.started`` (SIP and WebRTC: playback began). Where the server
sends no playback events (a WebSocket session) it is the first ``response.output_audio.delta``:
a delta ends a wait provisionally, until its response is done or the call ends (a turn's, also
when the caller speaks); a playback start before then replaces it, and once the call has seen
a playback start, deltas no longer count.

The rules of a turn:

- the caller speaking again before hearing anything (``speech_started`` during a turn) drops
  the turn: their wait starts again when they stop;
- a turn that gets no audio before the caller speaks again or the call ends (a reply with no
  audio, the caller hanging up) is not counted;
- a barge-in needs no rule: the interrupted response's audio had begun, so no turn was open,
  and the caller's new turn ends at the audio of the response that answers it.

The greeting is measured only when the accept time is known (not after a takeover) and the
greeting response itself plays: a greeting cut short before its audio stays unmeasured.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openai.types.realtime import (
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeServerEvent,
    ResponseAudioDeltaEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
)
from openai.types.realtime.realtime_server_event import OutputAudioBufferStarted

from callcenter.call.responses import KEY

__all__ = ["GREETING_KEY", "LatencyTracker", "Measured", "Turn", "latency_summary"]

GREETING_KEY = "greeting"  # the metadata key of the session's greeting request
_TIMED = frozenset(
    {
        "response.created",
        "output_audio_buffer.started",
        "response.output_audio.delta",
        "response.done",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
    }
)


@dataclass(frozen=True, slots=True)
class Turn:
    """One measured turn: the caller's whole wait, and the part our tools ran in it."""

    ms: float
    tool_ms: float


@dataclass(frozen=True, slots=True)
class Measured:
    """A wait just measured (for the metrics): the greeting or a turn, in seconds."""

    kind: Literal["greeting", "turn"]
    seconds: float


@dataclass(slots=True)
class _Wait:
    """A wait under way: since when, and when a delta ended it provisionally."""

    since: float
    heard: float | None = None


@dataclass(slots=True)
class _Greeting(_Wait):
    response_id: str | None = None  # the greeting response, once created


@dataclass(slots=True)
class _Turn(_Wait):
    heard_in: str | None = None  # the response of the delta that ended it provisionally


@dataclass(slots=True)
class _Busy:
    """When our function tools ran: intervals, the last one open while a tool runs."""

    running: set[str] = field(default_factory=set)
    spans: list[list[float | None]] = field(default_factory=list)

    def overlap(self, start: float, end: float) -> float:
        """Seconds of [start, end] during which a tool ran."""
        total = 0.0
        for began, ended in self.spans:
            assert began is not None
            total += max(0.0, min(end if ended is None else ended, end) - max(began, start))
        return total

    def prune(self, before: float) -> None:
        """Forget the spans over before ``before``."""
        self.spans = [s for s in self.spans if s[1] is None or s[1] > before]


class LatencyTracker:
    """The waits of one call; feed it with :meth:`event`, read :meth:`as_data`."""

    def __init__(self, accepted_at: float | None = None) -> None:
        """``accepted_at``: when the accept was sent, on the clock of the arrival times."""
        self.greeting_ms: float | None = None
        self._turn_ms = array("d")  # wait, tool part, wait, ...: 16 bytes a turn, a long call
        self._greeting = _Greeting(accepted_at) if accepted_at is not None else None
        self._turn: _Turn | None = None
        self._playback = False  # the server reports playback (output_audio_buffer.started)
        self._busy = _Busy()

    @classmethod
    def restored(cls, data: Mapping[str, Any]) -> LatencyTracker:
        """Go on with the waits another process measured (its :meth:`as_data`)."""
        tracker = cls()
        greeting = data.get("greeting_ms")
        tracker.greeting_ms = float(greeting) if greeting is not None else None
        for ms, tool in data.get("turn_ms") or ():
            tracker._turn_ms.extend((float(ms), float(tool)))
        return tracker

    @property
    def turns(self) -> list[Turn]:
        """The turns measured, in order."""
        pairs = self._turn_ms
        return [Turn(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]

    @property
    def measured(self) -> bool:
        """Some wait was measured."""
        return self.greeting_ms is not None or bool(self._turn_ms)

    def event(self, event: RealtimeServerEvent, at: float) -> list[Measured]:
        """Take one server event that arrived at ``at``; return the waits it ended."""
        if event.type not in _TIMED:  # most events: cheaply passed by
            return []
        if isinstance(event, ResponseCreatedEvent):
            greeting = self._greeting
            key = (event.response.metadata or {}).get(KEY)
            if greeting is not None and greeting.response_id is None and key == GREETING_KEY:
                greeting.response_id = event.response.id
            return []
        if isinstance(event, OutputAudioBufferStarted):
            self._playback = True
            return self._heard(event.response_id, at, final=True)
        if isinstance(event, ResponseAudioDeltaEvent):
            return [] if self._playback else self._heard(event.response_id, at, final=False)
        if isinstance(event, ResponseDoneEvent):
            return self._response_done(event.response.id, event.response.status)
        if isinstance(event, InputAudioBufferSpeechStartedEvent):
            measured = self._settle_turn()
            self._turn = None  # not heard yet: dropped, the wait starts again when they stop
            return measured
        if isinstance(event, InputAudioBufferSpeechStoppedEvent):
            measured = self._settle_turn()
            self._turn = _Turn(at)
            self._busy.prune(at)
            return measured
        return []

    def tool_started(self, call_id: str, at: float) -> None:
        """A function tool of ours began to run."""
        busy = self._busy
        if not busy.running:
            busy.spans.append([at, None])
        busy.running.add(call_id)

    def tool_finished(self, call_id: str, at: float) -> None:
        """A function tool of ours is done (finished, failed or cancelled)."""
        busy = self._busy
        if call_id not in busy.running:
            return
        busy.running.discard(call_id)
        if not busy.running:
            busy.spans[-1][1] = at

    def finish(self) -> list[Measured]:
        """The call is over: a wait ended by a delta stands; one with no audio is dropped."""
        measured = self._settle_turn()
        greeting = self._greeting
        if greeting is not None and greeting.heard is not None:
            measured += self._greeted(greeting.heard)
        self._greeting = self._turn = None
        return measured

    def as_data(self) -> dict[str, Any]:
        """What the store keeps: ``greeting_ms`` and ``turn_ms`` ([wait, tool part] each)."""
        return {
            "greeting_ms": self.greeting_ms,
            "turn_ms": [[turn.ms, turn.tool_ms] for turn in self.turns],
        }

    # -- internals ---------------------------------------------------------------------------

    def _heard(self, response_id: str, at: float, *, final: bool) -> list[Measured]:
        measured: list[Measured] = []
        greeting = self._greeting
        if greeting is not None and greeting.response_id == response_id:
            if final:
                measured += self._greeted(at)
            elif greeting.heard is None:
                greeting.heard = at
        turn = self._turn
        if turn is not None:
            if final:
                measured += self._turned(turn, at)
            elif turn.heard is None:
                turn.heard, turn.heard_in = at, response_id
        return measured

    def _response_done(self, response_id: str | None, status: str | None) -> list[Measured]:
        measured: list[Measured] = []
        greeting = self._greeting
        if greeting is not None and response_id is not None and greeting.response_id == response_id:
            if greeting.heard is not None:
                measured += self._greeted(greeting.heard)
            elif status != "completed":
                self._greeting = None  # cut short before its audio
        turn = self._turn
        if turn is not None and turn.heard is not None and turn.heard_in == response_id:
            measured += self._turned(turn, turn.heard)
        return measured

    def _settle_turn(self) -> list[Measured]:
        turn = self._turn
        if turn is None or turn.heard is None:
            return []
        return self._turned(turn, turn.heard)

    def _greeted(self, at: float) -> list[Measured]:
        greeting = self._greeting
        assert greeting is not None
        self._greeting = None
        seconds = max(at - greeting.since, 0.0)
        self.greeting_ms = _ms(seconds)
        return [Measured("greeting", seconds)]

    def _turned(self, turn: _Turn, at: float) -> list[Measured]:
        self._turn = None
        seconds = max(at - turn.since, 0.0)
        tool = min(self._busy.overlap(turn.since, at), seconds)
        self._turn_ms.extend((_ms(seconds), _ms(tool)))
        return [Measured("turn", seconds)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _rank(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted ``values`` (a value that was measured)."""
    return values[max(math.ceil(fraction * len(values)) - 1, 0)]


def latency_summary(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The API's ``latency`` of a call from what the store keeps; null where not measured.

    ``turn_*`` are the caller's whole waits; ``tool_ms`` sums the time our tools ran inside
    them; ``model_*`` are the waits less that time (the model's own latency).
    """
    data = data or {}
    greeting = data.get("greeting_ms")
    pairs = [(float(ms), float(tool)) for ms, tool in data.get("turn_ms") or ()]
    waits = sorted(ms for ms, _ in pairs)
    model = sorted(round(ms - tool, 1) for ms, tool in pairs)
    return {
        "greeting_ms": float(greeting) if greeting is not None else None,
        "turns": len(pairs),
        "turn_p50_ms": _rank(waits, 0.5) if waits else None,
        "turn_p90_ms": _rank(waits, 0.9) if waits else None,
        "turn_max_ms": waits[-1] if waits else None,
        "tool_ms": round(sum(tool for _, tool in pairs), 1) if pairs else None,
        "model_p50_ms": _rank(model, 0.5) if model else None,
        "model_p90_ms": _rank(model, 0.9) if model else None,
    }
