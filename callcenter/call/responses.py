"""One in-band response at a time: our ``response.create`` requests wait for the running one.

A conversation has at most one active in-band response; a ``response.create`` sent while
one runs is refused with an ``error``. So :class:`ResponseQueue` holds our requests until
the running response (ours, or one the server started after the caller spoke) is done,
and puts a refused request back in line. Each request carries ``metadata`` with its key
(``{"callcenter": "handoff-1"}``); the server returns it on the response, which is how a
response is matched to its request and an out-of-band one told apart.

It also tells when a line has been *heard*: ``output_audio_buffer.stopped`` (or
``.cleared``) for its response once playback started, else ``response.done``. Pure.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from openai.types.realtime import RealtimeError, RealtimeResponse
from openai.types.realtime.realtime_response_create_params_param import (
    RealtimeResponseCreateParamsParam,
)

__all__ = ["KEY", "Heard", "ResponseQueue", "verbatim"]

KEY = "callcenter"  # the metadata key naming our requests
_UNKNOWN = "?"  # a response runs whose id we do not know (one refused ours)
_ACTIVE_RESPONSE = "conversation_already_has_active_response"

ClientEvent = dict[str, object]


def verbatim(line: str) -> RealtimeResponseCreateParamsParam:
    """The request of a response that says ``line`` word for word and calls no tool.

    (The emulator's ``say_exactly`` reads the line back out of these instructions.)
    """
    return {
        "instructions": f"Say exactly this to the caller, and nothing else: {line}",
        "tool_choice": "none",
    }


@dataclass(frozen=True, slots=True)
class _Request:
    key: str
    params: RealtimeResponseCreateParamsParam
    event_id: str


@dataclass(slots=True)
class Heard:
    """What a response event settled: the keys of our lines now heard (or never to be)."""

    sends: list[ClientEvent] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)


class ResponseQueue:
    """Our response requests, the in-band response running now, and lines being played."""

    def __init__(self) -> None:
        self._waiting: deque[_Request] = deque()
        self._sent: _Request | None = None  # sent in-band; its response.created not seen yet
        self._active: str | None = None  # the in-band response running (id, or _UNKNOWN)
        self._keys: dict[str, str] = {}  # response id -> our key, until heard
        self._playing: set[str] = set()  # response ids whose audio is playing
        self._count = 0

    @property
    def idle(self) -> bool:
        """No in-band response runs or waits."""
        return self._sent is None and self._active is None and not self._waiting

    def request(self, key: str, params: RealtimeResponseCreateParamsParam) -> list[ClientEvent]:
        """Ask for an in-band response; sent now if none runs, else when it is done."""
        self._waiting.append(_Request(key, self._tagged(key, params), self._event_id()))
        return self._next()

    def aside(self, key: str, params: RealtimeResponseCreateParamsParam) -> ClientEvent:
        """An out-of-band response (``conversation: "none"``): it does not wait in line."""
        return _create(_Request(key, self._tagged(key, params), self._event_id()))

    def drop_waiting(self) -> None:
        """Forget the requests not sent yet (the call is moving on without them)."""
        self._waiting.clear()

    def created(self, response: RealtimeResponse) -> None:
        """``response.created``: an in-band one becomes the running response."""
        key = _key_of(response)
        if key is not None and response.id:
            self._keys[response.id] = key
        if response.conversation_id is None and key is not None and not self._is_sent(key):
            return  # out-of-band: it runs beside the conversation
        if self._sent is not None and key == self._sent.key:
            self._sent = None
        self._active = response.id or _UNKNOWN

    def done(self, response: RealtimeResponse) -> Heard:
        """``response.done``: the line is heard unless it is playing; the next request goes."""
        result = Heard()
        rid = response.id or ""
        if rid and (rid == self._active or self._active == _UNKNOWN):
            self._active = None
        key = self._keys.get(rid)
        if key is not None and rid not in self._playing:
            del self._keys[rid]
            result.heard.append(key)
        result.sends = self._next()
        return result

    def playback(self, kind: str, response_id: str) -> Heard:
        """``output_audio_buffer.started|stopped|cleared`` for ``response_id``."""
        result = Heard()
        if kind == "started":
            self._playing.add(response_id)
            return result
        self._playing.discard(response_id)
        key = self._keys.pop(response_id, None)
        if key is not None:
            result.heard.append(key)
        return result

    def refused(self, error: RealtimeError) -> Heard | None:
        """An ``error`` about our in-band request; None when it is about something else.

        Refused because a response runs: back to the head of the line until that one is
        done. Refused for another reason: dropped, and its line counts as heard (it never
        will be).
        """
        sent = self._sent
        if sent is None or error.event_id != sent.event_id:
            return None
        self._sent = None
        result = Heard()
        if error.code == _ACTIVE_RESPONSE:
            self._waiting.appendleft(sent)
            self._active = self._active or _UNKNOWN
        else:
            result.heard.append(sent.key)
            result.sends = self._next()
        return result

    def reattached(self) -> list[ClientEvent]:
        """A new sideband: what ran on the old one is unknown, so the line is free again.

        A request sent on the old socket is taken as received (sending it again could make
        the caller hear a line twice); the next one waiting goes now.
        """
        self._sent = None
        self._active = None
        self._playing.clear()
        return self._next()

    def _next(self) -> list[ClientEvent]:
        if self._sent is not None or self._active is not None or not self._waiting:
            return []
        self._sent = self._waiting.popleft()
        return [_create(self._sent)]

    def _is_sent(self, key: str) -> bool:
        return self._sent is not None and self._sent.key == key

    def _tagged(
        self, key: str, params: RealtimeResponseCreateParamsParam
    ) -> RealtimeResponseCreateParamsParam:
        return {**params, "metadata": {**dict(params.get("metadata") or {}), KEY: key}}

    def _event_id(self) -> str:
        self._count += 1
        return f"cc_response_{self._count}"


def _create(request: _Request) -> ClientEvent:
    return {"type": "response.create", "event_id": request.event_id, "response": request.params}


def _key_of(response: RealtimeResponse) -> str | None:
    key = (response.metadata or {}).get(KEY)
    return key if isinstance(key, str) else None
