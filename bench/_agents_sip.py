"""The Agents SDK as ``bench/sideband.py`` runs it: its ``twilio_sip`` example, per call.

As in ``examples/realtime/twilio_sip/server.py`` of openai-agents-python: the webhook is
verified with ``client.webhooks.unwrap``, the call is accepted through the REST endpoint
(with the session payload ``OpenAIRealtimeSIPModel.build_initial_session_payload`` gives for
the agent, so the no-op tool is declared), and a task per call runs a ``RealtimeSession``
of a ``RealtimeRunner`` with an ``OpenAIRealtimeSIPModel`` attached by ``call_id``, sends
the greeting as a raw ``response.create`` and consumes the session's events. The model's
``url`` points its WebSocket at the emulator. Tracing is off (nothing may leave loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from _sideband_ramp import GREETING, INSTRUCTIONS, TOOL_NAME, Emulator
from agents import function_tool, set_tracing_disabled
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.config import RealtimeSessionModelSettings
from agents.realtime.model_inputs import RealtimeModelSendRawMessage
from agents.realtime.openai_realtime import OpenAIRealtimeSIPModel
from openai import AsyncOpenAI


def noop() -> dict[str, object]:
    """Do nothing and answer at once."""
    return {}


class AgentsDriver:
    """One process of the Agents SDK holding the bench's calls."""

    def __init__(self, emulator: Emulator, payload: dict[str, Any], agent: RealtimeAgent) -> None:
        self._client = AsyncOpenAI(
            api_key=emulator.api_key,
            base_url=emulator.url + "/v1",
            webhook_secret=emulator.webhook_secret,
        )
        self._api_key = emulator.api_key
        self._ws_url = emulator.url.replace("http://", "ws://") + "/v1/realtime"
        self._payload = payload
        self._agent = agent
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start_call(self, call_id: str, body: bytes, headers: dict[str, str]) -> None:
        """Verify the webhook, accept the call, start its session task."""
        event = self._client.webhooks.unwrap(body, headers)
        if event.type != "realtime.call.incoming":
            raise RuntimeError(f"unexpected event {event.type}")
        await self._client.post(
            f"/realtime/calls/{event.data.call_id}/accept", body=self._payload, cast_to=dict
        )
        task = asyncio.create_task(self._observe(call_id))
        self._tasks[call_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(call_id, None))

    async def _observe(self, call_id: str) -> None:
        runner = RealtimeRunner(self._agent, model=OpenAIRealtimeSIPModel())
        settings: RealtimeSessionModelSettings = {
            "turn_detection": {"type": "semantic_vad", "interrupt_response": True}
        }
        greeting = RealtimeModelSendRawMessage(
            message={
                "type": "response.create",
                "other_data": {
                    "response": {"instructions": f"Say exactly '{GREETING}' now before continuing."}
                },
            }
        )
        model_config: Any = {
            "call_id": call_id,
            "url": f"{self._ws_url}?call_id={call_id}",
            "api_key": self._api_key,
            "initial_model_settings": settings,
        }
        async with await runner.run(model_config=model_config) as session:
            await session.model.send_event(greeting)
            async for _event in session:
                pass

    async def close(self) -> None:
        """Cancel every session task."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.close()


async def make_driver(emulator: Emulator) -> AgentsDriver:
    """The driver for :func:`_sideband_ramp.run_system`."""
    set_tracing_disabled(True)
    agent = RealtimeAgent(
        name="bench",
        instructions=INSTRUCTIONS,
        tools=[function_tool(noop, name_override=TOOL_NAME)],
    )
    session = await OpenAIRealtimeSIPModel.build_initial_session_payload(agent)
    payload = session.model_dump(exclude_none=True)
    return AgentsDriver(emulator, payload, agent)
