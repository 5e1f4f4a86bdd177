"""Fixtures of the emulator suite: a running emulator, SDK clients, a webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from openai import AsyncOpenAI

from callcenter.emulator import Emulator

from .helpers import API_KEY, FAST_REDELIVERY, WEBHOOK_SECRET, Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver served on a free port."""
    found = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/openai", found.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/openai"
    yield found
    await runner.cleanup()


@pytest.fixture
async def emulator(receiver: Receiver) -> AsyncIterator[Emulator]:
    """A started emulator that checks every event it sends against the SDK's types."""
    started = Emulator(
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        webhook_url=receiver.url,
        redelivery=FAST_REDELIVERY,
        validate_events=True,
    )
    await started.start()
    yield started
    await started.stop()
    assert started.event_problems == []


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[AsyncOpenAI]:
    """The SDK pointed at the emulator, without its own retries."""
    async with AsyncOpenAI(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as found:
        yield found
