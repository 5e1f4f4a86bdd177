"""The fast server-event parser builds what the SDK's parser builds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai._models import construct_type_unchecked
from openai.types.realtime import RealtimeServerEvent
from openai.types.realtime.realtime_server_event import ConversationItemRetrieved

from callcenter.call.server_events import event_classes, parse_server_event
from callcenter.emulator import events, mcp
from callcenter.emulator.api_error import ApiError


def sdk_parse(data: str | bytes) -> RealtimeServerEvent:
    """What ``AsyncRealtimeConnection.parse_event`` does."""
    value: Any = construct_type_unchecked(value=json.loads(data), type_=RealtimeServerEvent)  # type: ignore[arg-type]
    return value  # type: ignore[no-any-return]


def emulator_events() -> list[dict[str, Any]]:
    """One of every server event the emulator builds."""
    session = events.default_session()
    call = events.function_call_item("item_f", "call_1", "lookup", '{"a": 1}', "completed")
    said = events.assistant_item("item_a", "completed", "hello", audio=True)
    heard = events.user_audio_item("item_u", "hi")
    output = [said, call]
    done = events.response_object(
        "resp_1",
        status="completed",
        output=output,
        conversation_id="conv_1",
        session=session,
        modalities=["audio"],
        metadata={"k": "v"},
        usage=events.usage(12, "hello", audio=True),
    )
    created = events.response_object(
        "resp_1",
        status="in_progress",
        output=[],
        conversation_id="conv_1",
        session=session,
        modalities=["audio"],
        metadata=None,
    )
    return [
        events.session_created(session),
        events.session_updated(session),
        events.error(ApiError(400, "bad", "invalid_value", "session.voice"), "evt_c"),
        events.rate_limits_updated(),
        events.item_added(heard, None),
        events.item_done(heard, "item_0"),
        events.item_deleted("item_u"),
        events.item_retrieved(said),
        events.item_truncated("item_a", 0, 1500),
        events.speech_started("item_u", 100),
        events.speech_stopped("item_u", 900),
        events.committed("item_u", None),
        events.input_cleared(),
        events.timeout_triggered("item_u", 100, 5100),
        events.dtmf_received("5"),
        events.transcription_delta("item_u", "hi"),
        events.transcription_completed("item_u", "hi"),
        events.transcription_failed("item_u"),
        events.response_created(created),
        events.response_done(done),
        events.output_item_added("resp_1", 0, said),
        events.output_item_done("resp_1", 1, call),
        events.content_part("response.content_part.added", "resp_1", "item_a", 0, "", audio=True),
        events.content_part("response.content_part.done", "resp_1", "item_a", 0, "hi", audio=False),
        events.text_delta("resp_1", "item_a", 0, "he", audio=True),
        events.text_delta("resp_1", "item_a", 0, "he", audio=False),
        events.text_done("resp_1", "item_a", 0, "hello", audio=True),
        events.text_done("resp_1", "item_a", 0, "hello", audio=False),
        events.arguments_delta("resp_1", "item_f", 1, "call_1", '{"a"'),
        events.arguments_done("resp_1", "item_f", 1, "call_1", "lookup", '{"a": 1}'),
        events.output_audio_buffer("started", "resp_1"),
        events.output_audio_buffer("stopped", "resp_1"),
        events.output_audio_buffer("cleared", "resp_1"),
        *mcp.progress_events("resp_1", "item_m", 2, '{"q": "x"}'),
    ]


SAMPLES = emulator_events()


@pytest.mark.parametrize("sample", SAMPLES, ids=[str(s["type"]) for s in SAMPLES])
def test_emulator_event_parses_like_the_sdk(sample: dict[str, Any]) -> None:
    """Every emulator event parses to the SDK parser's class and fields."""
    raw = json.dumps(sample).encode()
    fast, slow = parse_server_event(raw, sdk_parse), sdk_parse(raw)
    assert type(fast) is type(slow)
    assert fast.model_dump(exclude_unset=True) == slow.model_dump(exclude_unset=True)


def test_every_union_member_has_its_type() -> None:
    """The map holds all members of the union, the ones defined beside it too."""
    classes = event_classes()
    assert len(classes) == 46
    assert classes["conversation.item.retrieved"] is ConversationItemRetrieved
    assert classes["output_audio_buffer.cleared"].__name__ == "OutputAudioBufferCleared"


def test_unknown_type_goes_to_the_fallback() -> None:
    """An event type the union lacks is parsed by the fallback."""
    raw = '{"type": "response.brand_new", "event_id": "e1"}'
    seen: list[str | bytes] = []

    def fallback(data: str | bytes) -> RealtimeServerEvent:
        seen.append(data)
        return sdk_parse(data)

    parse_server_event(raw, fallback)
    assert seen == [raw]


def test_invalid_event_goes_to_the_fallback() -> None:
    """An event its class rejects is built by the fallback, leniently, as the SDK does."""
    raw = '{"type": "input_audio_buffer.speech_started", "event_id": "e1"}'
    event = parse_server_event(raw, sdk_parse)
    assert type(event).__name__ == "InputAudioBufferSpeechStartedEvent"
    assert event.model_dump(exclude_unset=True) == sdk_parse(raw).model_dump(exclude_unset=True)


async def test_the_sdk_connection_parses_through_its_parse_event() -> None:
    """Guard for use_fast_parsing: the SDK's recv() and iteration use the instance's parser."""
    import websockets.asyncio.server
    from openai import AsyncOpenAI

    from callcenter.call.server_events import use_fast_parsing

    sample = json.dumps(events.session_created({"type": "realtime"}))

    async def handler(socket: websockets.asyncio.server.ServerConnection) -> None:
        await socket.send(sample)
        await socket.send(sample)
        await socket.close()

    seen: list[str | bytes] = []
    async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = AsyncOpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1")
        async with client.realtime.connect(call_id="rtc_guard") as connection:
            use_fast_parsing(connection)
            fast = connection.parse_event

            def watched(data: str | bytes) -> RealtimeServerEvent:
                seen.append(data)
                return fast(data)

            setattr(connection, "parse_event", watched)  # noqa: B010 - as use_fast_parsing does
            received = [await connection.recv()] + [event async for event in connection]
    assert len(received) == 2
    assert len(seen) == 2, "the SDK no longer parses through parse_event: see call/server_events.py"
    assert all(event.type == "session.created" for event in received)
