"""Many concurrent sidebands in one process."""

from __future__ import annotations

import asyncio
import json

import websockets
from openai import AsyncOpenAI

from callcenter.emulator import Emulator

from .helpers import API_KEY, answered

CALLS = 300


async def test_hundreds_of_sidebands_are_open_at_once(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """300 calls each hold a sideband and get a greeting, all at the same time."""
    calls = [await answered(emulator, client) for _ in range(CALLS)]
    base = emulator.base_url.replace("http", "ws") + "/realtime?call_id="
    headers = {"Authorization": f"Bearer {API_KEY}"}
    sockets = await asyncio.gather(
        *(websockets.connect(base + call.call_id, additional_headers=headers) for call in calls)
    )
    try:
        for socket in sockets:
            await socket.send(json.dumps({"type": "response.create"}))

        async def greeted(socket: websockets.ClientConnection) -> bool:
            while json.loads(await socket.recv())["type"] != "output_audio_buffer.stopped":
                pass
            return True

        async with asyncio.timeout(20):
            assert all(await asyncio.gather(*(greeted(socket) for socket in sockets)))
        assert len(emulator.conversations) == CALLS
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))
