"""Helpers of the emulator suite: a webhook receiver, answering calls, reading events."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import RealtimeServerEvent

from callcenter.emulator import EmulatedCall, Emulator, RedeliveryPolicy, Step

API_KEY = "sk-emulator-tests"
WEBHOOK_SECRET = "whsec_ZW11bGF0b3ItdGVzdHMtc2VjcmV0LTMyLWJ5dGVzISE="
READ_TIMEOUT = 5.0
FAST_REDELIVERY = RedeliveryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.04, timeout=0.3)


@dataclass
class Received:
    """One webhook POST the receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1: answers the queued statuses (then 200), maybe late.

    The ``live.transport.incoming`` announcing each call (as OpenAI sends beside
    ``realtime.call.incoming``) is kept apart in ``live`` and answered 200 at once.
    """

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    live: list[Received] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)
    active: int = 0
    most_active: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        """Record the delivery and answer it."""
        received = Received(dict(request.headers), await request.read())
        if b'"type":"live.transport.incoming"' in received.body:
            self.live.append(received)
            return web.Response(status=200)
        self.requests.append(received)
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.delays:
                await asyncio.sleep(self.delays.popleft())  # a slow receiver, not a wait
            return web.Response(status=self.statuses.popleft() if self.statuses else 200)
        finally:
            self.active -= 1


PHONE_AUDIO: dict[str, Any] = {
    "input": {
        "transcription": {"model": "gpt-4o-mini-transcribe"},
        "turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000},
    }
}


async def answered(
    emulator: Emulator, client: AsyncOpenAI, script: tuple[Step, ...] = (), **config: Any
) -> EmulatedCall:
    """A call placed and accepted (with ``config`` as the session; without ``audio``, the
    input is transcribed and server VAD reports silences, as callcenter asks)."""
    config.setdefault("audio", PHONE_AUDIO)
    call = emulator.place_call(script=script)
    await client.realtime.calls.accept(call.call_id, type="realtime", **config)
    return call


async def read_until(connection: AsyncRealtimeConnection, kind: str) -> list[RealtimeServerEvent]:
    """Events received up to and including the first of type ``kind`` (within 5 s)."""
    received: list[RealtimeServerEvent] = []
    async with asyncio.timeout(READ_TIMEOUT):
        while True:
            received.append(await connection.recv())
            if received[-1].type == kind:
                return received


def types_of(events: list[Any]) -> list[str]:
    """The ``type`` of each event (SDK models or dicts)."""
    return [e["type"] if isinstance(e, dict) else e.type for e in events]
