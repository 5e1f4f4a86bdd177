"""The sideband WebSocket, driven by the SDK's ``realtime.connect(call_id=...)``."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from openai.types.websocket_reconnection import ReconnectingEvent
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from callcenter.emulator import CallState, Emulator, ModelCallTool, ModelSay, ToolCall

from .helpers import answered, read_until, types_of

GREETING_ORDER = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "output_audio_buffer.started",
    "response.output_audio_transcript.delta",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
    "rate_limits.updated",
    "output_audio_buffer.stopped",
]


def _without_repeated_deltas(kinds: list[str]) -> list[str]:
    return [k for i, k in enumerate(kinds) if not (k.endswith(".delta") and kinds[i - 1] == k)]


async def _refusal_status(client: AsyncOpenAI, call_id: str) -> int:
    with pytest.raises(InvalidStatus) as caught:
        async with client.realtime.connect(call_id=call_id):
            pass
    return caught.value.response.status_code


async def test_the_sdk_reaches_the_sideband_under_base_url(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """connect(call_id=...) derives ws://…/v1/realtime?call_id=… from base_url and attaches."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        first = await connection.recv()
    assert first.type == "session.created"
    assert call.attaches == 1


async def test_a_ringing_call_refuses_the_handshake(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """Before accept the handshake is refused with 409 and no upgrade."""
    call = emulator.place_call()
    assert await _refusal_status(client, call.call_id) == 409


async def test_an_unknown_or_ended_call_refuses_the_handshake(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """Unknown and finished calls are refused with 404."""
    assert await _refusal_status(client, "rtc_" + "1" * 32) == 404
    call = await answered(emulator, client)
    await client.realtime.calls.hangup(call.call_id)
    assert await _refusal_status(client, call.call_id) == 404


async def test_a_bad_key_refuses_the_handshake(emulator: Emulator, client: AsyncOpenAI) -> None:
    """A wrong bearer key is refused with 401."""
    call = await answered(emulator, client)
    async with AsyncOpenAI(api_key="sk-bad", base_url=emulator.base_url, max_retries=0) as bad:
        assert await _refusal_status(bad, call.call_id) == 401


async def test_an_injected_refusal_refuses_once(emulator: Emulator, client: AsyncOpenAI) -> None:
    """refuse_sideband answers the next handshake with its status; the next one attaches."""
    call = await answered(emulator, client)
    emulator.faults.refuse_sideband(status=503, call_id=call.call_id)
    assert await _refusal_status(client, call.call_id) == 503
    async with client.realtime.connect(call_id=call.call_id) as connection:
        assert (await connection.recv()).type == "session.created"


async def test_session_created_echoes_the_accepted_config_with_defaults(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """session.created holds the accepted config merged over the defaults."""
    call = await answered(
        emulator,
        client,
        model="gpt-realtime-2",
        instructions="You are Acme's support line.",
        audio={"output": {"voice": "cedar"}},
        tools=[{"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}],
    )
    async with client.realtime.connect(call_id=call.call_id) as connection:
        created = await connection.recv()
    assert created.type == "session.created"
    session = created.session
    assert session.type == "realtime"
    assert session.model == "gpt-realtime-2"
    assert session.instructions == "You are Acme's support line."
    assert session.audio is not None
    assert session.audio.output is not None
    assert session.audio.output.voice == "cedar"
    assert session.audio.input is not None
    assert session.audio.input.turn_detection is not None
    assert session.audio.input.turn_detection.type == "server_vad"
    assert session.tools is not None
    assert session.tools[0].name == "lookup_order"
    assert (session.model_extra or {})["object"] == "realtime.session"


async def test_session_update_is_answered_by_session_updated(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A valid session.update changes the session and comes back as session.updated."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.session.update(session={"type": "realtime", "instructions": "Phase 2."})
        updated = await connection.recv()
    assert updated.type == "session.updated"
    assert updated.session.instructions == "Phase 2."


async def test_an_invalid_session_update_is_an_error_naming_the_event(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A session.update with a bad value gets error with param and the client event_id."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.send(
            {
                "type": "session.update",
                "event_id": "evt_bad_update",
                "session": {"type": "realtime", "max_output_tokens": 0},
            }
        )
        error = await connection.recv()
    assert error.type == "error"
    assert error.error.event_id == "evt_bad_update"
    assert error.error.param == "session.max_output_tokens"
    assert error.error.type == "invalid_request_error"


async def test_an_invalid_client_event_is_an_error_naming_the_event(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """Unknown types and missing required fields are errors; every client event is recorded."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.send({"type": "conversation.item.create", "event_id": "evt_no_item"})
        missing = await connection.recv()
        await connection.send({"type": "session.frobnicate", "event_id": "evt_unknown"})
        unknown = await connection.recv()
    assert (missing.type, missing.error.event_id, missing.error.param) == (
        "error",
        "evt_no_item",
        "item",
    )
    assert missing.error.code == "missing_required_parameter"
    assert (unknown.error.event_id, unknown.error.param) == ("evt_unknown", "type")
    assert [e["event_id"] for e in call.client_events] == ["evt_no_item", "evt_unknown"]


async def test_a_greeting_follows_the_documented_order(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """response.create gives the full audio-response sequence, playback stopping last."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create(
            response={"instructions": "Say exactly: Thanks for calling Acme."}
        )
        received = await read_until(connection, "output_audio_buffer.stopped")
    assert _without_repeated_deltas(types_of(received)) == GREETING_ORDER
    done = next(e for e in received if e.type == "response.done")
    assert done.response.status == "completed"
    assert done.response.usage is not None
    assert done.response.usage.total_tokens
    transcript = next(e for e in received if e.type == "response.output_audio_transcript.done")
    assert transcript.transcript == "Thanks for calling Acme."


async def test_a_scripted_reply_is_what_the_model_says(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A queued ModelSay is the next response's text."""
    call = await answered(emulator, client, script=(ModelSay("Acme, Ada speaking."),))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create()
        received = await read_until(connection, "response.done")
    output = received[-1].response.output
    assert output is not None
    assert output[0].content[0].transcript == "Acme, Ada speaking."


async def test_an_out_of_band_response_stays_out_of_the_conversation(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """conversation none: text deltas, metadata echoed, no items added, no playback."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create(
            response={
                "conversation": "none",
                "output_modalities": ["text"],
                "metadata": {"purpose": "summary"},
                "instructions": "Say exactly: 'Caller asked about order 42.'",
            }
        )
        received = await read_until(connection, "rate_limits.updated")
    kinds = types_of(received)
    assert "conversation.item.added" not in kinds
    assert "output_audio_buffer.started" not in kinds
    assert "response.output_text.delta" in kinds
    done = next(e for e in received if e.type == "response.done")
    assert done.response.metadata == {"purpose": "summary"}
    assert done.response.conversation_id is None
    text = next(e for e in received if e.type == "response.output_text.done")
    assert text.text == "Caller asked about order 42."


async def test_a_second_in_band_response_is_an_error(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """response.create while one is active: conversation_already_has_active_response."""
    emulator.pacing = type(emulator.pacing)(delta_interval=0.05)
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.send({"type": "response.create", "event_id": "evt_first"})
        await connection.send({"type": "response.create", "event_id": "evt_second"})
        received = await read_until(connection, "response.done")
    error = next(e for e in received if e.type == "error")
    assert error.error.code == "conversation_already_has_active_response"
    assert error.error.event_id == "evt_second"
    assert types_of(received).count("response.created") == 1


async def test_a_function_call_waits_for_its_output(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A scripted tool call ends the response; the model speaks again only when asked."""
    script = (ModelCallTool("lookup_order", {"order_id": "42"}), ModelSay("It shipped."))
    call = await answered(emulator, client, script=script)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create()
        received = await read_until(connection, "rate_limits.updated")
        assert _without_repeated_deltas(types_of(received)) == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated",
        ]
        arguments = next(e for e in received if e.type == "response.function_call_arguments.done")
        assert (arguments.name, arguments.arguments) == ("lookup_order", '{"order_id": "42"}')
        await connection.conversation.item.create(
            item={"type": "function_call_output", "call_id": arguments.call_id, "output": "{}"}
        )
        assert types_of(await read_until(connection, "conversation.item.done")) == [
            "conversation.item.added",
            "conversation.item.done",
        ]
        await connection.response.create()
        spoken = await read_until(connection, "response.output_audio_transcript.done")
    assert spoken[-1].transcript == "It shipped."


async def test_several_calls_in_one_response(emulator: Emulator, client: AsyncOpenAI) -> None:
    """ModelCallTool with also= puts several function_call items in one response.done."""
    tool = ModelCallTool("lookup_order", {"order_id": "1"}, also=(ToolCall("end_call", {}),))
    call = await answered(emulator, client, script=(tool,))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create()
        received = await read_until(connection, "response.done")
    output = received[-1].response.output or []
    assert [(item.type, item.name) for item in output] == [
        ("function_call", "lookup_order"),
        ("function_call", "end_call"),
    ]


async def test_an_output_for_an_unknown_call_id_is_an_error(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """function_call_output must answer a function call of the conversation."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.send(
            {
                "type": "conversation.item.create",
                "event_id": "evt_output",
                "item": {"type": "function_call_output", "call_id": "call_nope", "output": "{}"},
            }
        )
        error = await connection.recv()
    assert (error.type, error.error.event_id, error.error.param) == (
        "error",
        "evt_output",
        "item.call_id",
    )


async def test_the_caller_hanging_up_closes_the_socket_with_1000(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """The caller's hang-up closes the sideband at once (1000, no event first)."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        emulator.caller_hangs_up(call.call_id)
        with pytest.raises(ConnectionClosedOK) as caught:
            await connection.recv()
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1000
    assert (call.state, call.ended_by) == (CallState.ENDED, "caller")


async def test_our_hangup_closes_the_socket_soon_after(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """POST hangup ends the call and closes the sideband with 1000."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await client.realtime.calls.hangup(call.call_id)
        with pytest.raises(ConnectionClosedOK):
            await connection.recv()


async def test_a_dropped_socket_can_reattach(emulator: Emulator, client: AsyncOpenAI) -> None:
    """A drop after N events cuts TCP (1006); the call stays live and a reattach works."""
    call = await answered(emulator, client)
    emulator.faults.drop_sideband(after_events=1, call_id=call.call_id)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        assert (await connection.recv()).type == "session.created"
        with pytest.raises(ConnectionClosedError) as caught:
            await connection.recv()
    assert caught.value.rcvd is None  # no close frame: abnormal closure (1006)
    assert call.state is CallState.ACCEPTED
    async with client.realtime.connect(call_id=call.call_id) as connection:
        assert (await connection.recv()).type == "session.created"
    assert call.attaches == 2


async def test_a_service_restart_closes_with_1012(emulator: Emulator, client: AsyncOpenAI) -> None:
    """A drop fault with code 1012 closes the socket with that code."""
    call = await answered(emulator, client)
    emulator.faults.drop_sideband(after_events=1, code=1012)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        with pytest.raises(ConnectionClosedError) as caught:
            await connection.recv()
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1012


async def test_the_sdk_reconnects_by_itself_after_a_drop(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """With on_reconnecting, the SDK reattaches after a 1006 and gets a new session.created."""
    call = await answered(emulator, client)
    emulator.faults.drop_sideband(after_events=1)
    close_codes: list[int] = []

    def on_reconnecting(event: ReconnectingEvent) -> None:
        close_codes.append(event.close_code)

    manager = client.realtime.connect(
        call_id=call.call_id, on_reconnecting=on_reconnecting, initial_delay=0.01
    )
    received: list[str] = []
    async with manager as connection:
        async for event in connection:
            received.append(event.type)
            if received == ["session.created", "session.created"]:
                await connection.response.create()
            if event.type == "response.done":
                break
    assert close_codes == [1006]
    assert received[:3] == ["session.created", "session.created", "response.created"]
    assert call.attaches == 2


async def test_a_refer_closes_the_socket_soon_after(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """POST refer: an unscripted target answers, the call is referred, the sideband closes 1000."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await client.realtime.calls.refer(call.call_id, target_uri="tel:+14155550123")
        with pytest.raises(ConnectionClosedOK):
            await connection.recv()
    assert call.state is CallState.REFERRED


async def test_client_items_are_placed_retrieved_and_deleted(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """conversation.item.create honours previous_item_id; retrieve and delete find the item."""
    call = await answered(emulator, client)
    note = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "VIP"}]}
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.conversation.item.create(item={"id": "item_a", **note})
        await connection.conversation.item.create(
            item={"id": "item_b", **note}, previous_item_id="root"
        )
        added = [
            e
            for e in await read_until(connection, "conversation.item.done")
            if e.type == "conversation.item.added"
        ]
        added += [
            e
            for e in await read_until(connection, "conversation.item.done")
            if e.type == "conversation.item.added"
        ]
        await connection.conversation.item.retrieve(item_id="item_a")
        retrieved = await connection.recv()
        await connection.conversation.item.delete(item_id="item_a")
        deleted = await connection.recv()
        await connection.conversation.item.delete(item_id="item_a")
        missing = await connection.recv()
    assert [(e.item.id, e.previous_item_id) for e in added] == [("item_a", None), ("item_b", None)]
    assert (retrieved.type, retrieved.item.id) == ("conversation.item.retrieved", "item_a")
    assert (deleted.type, deleted.item_id) == ("conversation.item.deleted", "item_a")
    assert (missing.type, missing.error.param) == ("error", "item_id")


async def test_committing_the_input_buffer_on_sip_is_an_error(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """The caller's audio comes over SIP: a manual commit finds an empty buffer."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.input_audio_buffer.commit(event_id="evt_commit")
        error = await connection.recv()
    assert (error.error.code, error.error.event_id) == (
        "input_audio_buffer_commit_empty",
        "evt_commit",
    )


async def test_a_bad_message_content_part_is_refused(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A content part inside an Iterable field (item.content) is type-checked like the rest."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.send(
            {
                "type": "conversation.item.create",
                "event_id": "evt_bad_part",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": 5}],
                },
            }
        )
        error = await connection.recv()
    assert (error.type, error.error.event_id) == ("error", "evt_bad_part")
    assert error.error.param == "item.content[0].text"


async def test_session_update_may_not_change_the_model_or_set_tracing(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """Another model is refused; tracing may be set once, then not changed."""
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "model": "gpt-realtime-mini"},
            }
        )
        model = await connection.recv()
        await connection.session.update(session={"type": "realtime", "tracing": "auto"})
        first = await connection.recv()
        await connection.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "tracing": {"workflow_name": "other"}},
            }
        )
        again = await connection.recv()
    assert (model.type, model.error.code) == ("error", "cannot_update_model")
    assert first.type == "session.updated"
    assert (again.type, again.error.param) == ("error", "session.tracing")


async def test_nothing_is_sent_after_the_call_ended(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A response still running when the call ends sends no more events."""
    script = (ModelSay("A long greeting with many words in it, said slowly."),)
    call = await answered(emulator, client, script)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create()
        await read_until(connection, "response.created")
        conversation = emulator.conversations[call.call_id]
        emulator.caller_hangs_up(call.call_id)
        before = sum(conversation.seen.values())
        conversation.emit({"type": "rate_limits.updated", "event_id": "e", "rate_limits": []})
    assert sum(conversation.seen.values()) == before
    assert call.state is CallState.ENDED
