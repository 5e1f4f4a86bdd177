"""Scripted callers: turns, keys, silence, barge-in, hang-ups and drops on the sideband."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

from callcenter.emulator import (
    CallState,
    DropSocket,
    Dtmf,
    Emulator,
    HangUp,
    ModelCallTool,
    ModelSay,
    Pacing,
    Say,
    ServerError,
    Silence,
    TransferFault,
    WaitFor,
)

from .helpers import answered, read_until, types_of

CALLER_TURN = [
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "response.created",
]


def _deduplicated(kinds: list[str]) -> list[str]:
    return [k for i, k in enumerate(kinds) if not (k.endswith(".delta") and kinds[i - 1] == k)]


async def test_a_caller_turn_follows_server_vad_order_and_gets_an_answer(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """Say: VAD events, the user item, its transcript, then an automatic response."""
    call = await answered(
        emulator, client, script=(Say("Where is my order?"), ModelSay("Checking."))
    )
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        received = await read_until(connection, "response.done")
    kinds = _deduplicated(types_of(received))
    assert kinds[: len(CALLER_TURN)] == CALLER_TURN
    item = next(e for e in received if e.type == "conversation.item.added")
    assert item.item.role == "user"
    assert item.item.content[0].transcript is None
    completed = next(
        e for e in received if e.type == "conversation.item.input_audio_transcription.completed"
    )
    assert (completed.transcript, completed.item_id) == ("Where is my order?", item.item.id)
    assert received[-1].response.output[0].content[0].transcript == "Checking."


async def test_a_late_transcription_comes_after_the_response_starts(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """transcription='after' completes the transcript after response.created."""
    call = await answered(emulator, client, script=(Say("Hello?", transcription="after"),))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        kinds = types_of(await read_until(connection, "response.done"))
    completed = kinds.index("conversation.item.input_audio_transcription.completed")
    assert completed > kinds.index("response.created")


async def test_a_failed_transcription_replaces_completed(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """transcription='failed' sends .failed and no .completed."""
    call = await answered(emulator, client, script=(Say("mumble", transcription="failed"),))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        kinds = types_of(await read_until(connection, "response.done"))
    assert "conversation.item.input_audio_transcription.failed" in kinds
    assert "conversation.item.input_audio_transcription.completed" not in kinds


async def test_no_automatic_response_without_create_response(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """With turn_detection.create_response false, a turn gets no response of its own."""
    vad = {"type": "server_vad", "create_response": False}
    script = (Say("Hi"), Dtmf("1"))
    call = await answered(emulator, client, script=script, audio={"input": {"turn_detection": vad}})
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        kinds = types_of(await read_until(connection, "input_audio_buffer.dtmf_event_received"))
    assert "response.created" not in kinds


async def test_a_key_press_is_a_dtmf_event(emulator: Emulator, client: AsyncOpenAI) -> None:
    """Dtmf sends input_audio_buffer.dtmf_event_received with the key and a timestamp."""
    call = await answered(emulator, client, script=(Dtmf("0"),))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        event = await connection.recv()
    assert event.type == "input_audio_buffer.dtmf_event_received"
    assert event.event == "0"
    assert event.received_at > 0


async def test_silence_triggers_the_idle_timeout_and_a_response(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """Silence: timeout_triggered → committed → the (empty) user item → a response."""
    vad = {"type": "server_vad", "idle_timeout_ms": 5000}
    call = await answered(
        emulator, client, script=(Silence(),), audio={"input": {"turn_detection": vad}}
    )
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        received = await read_until(connection, "response.done")
    assert types_of(received)[:4] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    timeout = received[0]
    assert timeout.audio_end_ms - timeout.audio_start_ms <= 5000
    assert received[1].item_id == timeout.item_id


@pytest.mark.parametrize(
    "vad", [{"type": "server_vad"}, {"type": "semantic_vad"}], ids=["no-idle-timeout", "semantic"]
)
async def test_silence_is_not_reported_without_an_idle_timeout(
    emulator: Emulator, client: AsyncOpenAI, vad: dict[str, str]
) -> None:
    """Without server VAD's idle_timeout_ms no timeout_triggered is sent: the caller is quiet."""
    script = (Silence(ms=10), Say("Hello?"))
    call = await answered(emulator, client, script=script, audio={"input": {"turn_detection": vad}})
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        received = await read_until(connection, "input_audio_buffer.committed")
        # read the answer too: a client closing with events unread waits out its close timeout
        await read_until(connection, "response.done")
    assert "input_audio_buffer.timeout_triggered" not in types_of(received)


async def test_no_transcription_events_when_transcription_is_off(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A session without input transcription gets the caller's turn but no transcription."""
    call = await answered(
        emulator, client, script=(Say("Hello there."),), audio={"output": {"voice": "marin"}}
    )
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        received = await read_until(connection, "response.done")
    kinds = types_of(received)
    assert "conversation.item.done" in kinds
    assert not [kind for kind in kinds if "input_audio_transcription" in kind]


async def test_barge_in_cancels_the_playing_response(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """Speaking over an audio response clears playback and cancels it (turn_detected)."""
    script = (ModelSay("A long greeting with many words in it."), Say("Stop!", barge_in=True))
    call = await answered(emulator, client, script=script)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create()
        received = await read_until(connection, "response.done")
        after = await read_until(connection, "output_audio_buffer.stopped")
    kinds = types_of(received)
    barge = kinds.index("input_audio_buffer.speech_started")
    assert kinds[barge:] == [
        "input_audio_buffer.speech_started",
        "output_audio_buffer.cleared",
        "response.done",
    ]
    done = received[-1].response
    assert done.status == "cancelled"
    assert done.status_details is not None
    assert done.status_details.reason == "turn_detected"
    assert "output_audio_buffer.stopped" not in kinds
    assert types_of(after)[1:3] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]


async def test_response_cancel_stops_the_active_response(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """response.cancel ends the active response as cancelled (client_cancelled)."""
    emulator.pacing = Pacing(delta_interval=0.05)
    call = await answered(emulator, client)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create()
        await read_until(connection, "output_audio_buffer.started")
        await connection.response.cancel()
        received = await read_until(connection, "response.done")
    assert received[-1].response.status == "cancelled"
    assert received[-1].response.status_details.reason == "client_cancelled"
    assert "output_audio_buffer.cleared" in types_of(received)


async def test_a_scripted_hang_up_closes_the_socket_and_ends_the_call(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """HangUp closes the sideband with 1000 and the call ends by the caller."""
    call = await answered(emulator, client, script=(Dtmf("1"), HangUp()))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.recv()
        with pytest.raises(ConnectionClosedOK):
            await connection.recv()
    assert (call.state, call.ended_by) == (CallState.ENDED, "caller")


async def test_the_script_resumes_after_a_reattach(emulator: Emulator, client: AsyncOpenAI) -> None:
    """DropSocket pauses the script; after a reattach it goes on with the next step."""
    call = await answered(emulator, client, script=(DropSocket(1006), Dtmf("7")))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        with pytest.raises(ConnectionClosedError):
            await connection.recv()
    async with client.realtime.connect(call_id=call.call_id) as connection:
        assert (await connection.recv()).type == "session.created"
        event = await connection.recv()
    assert event.type == "input_audio_buffer.dtmf_event_received"


async def test_wait_for_pauses_until_the_controller_acts(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """WaitFor('function_call_output') holds the script until the output arrives."""
    script = (
        Say("Order 42 please"),
        ModelCallTool("lookup_order", {"order_id": "42"}),
        WaitFor("function_call_output"),
        Dtmf("9"),
    )
    call = await answered(emulator, client, script=script)
    async with client.realtime.connect(call_id=call.call_id) as connection:
        received = await read_until(connection, "rate_limits.updated")
        assert "input_audio_buffer.dtmf_event_received" not in types_of(received)
        arguments = next(e for e in received if e.type == "response.function_call_arguments.done")
        await connection.conversation.item.create(
            item={"type": "function_call_output", "call_id": arguments.call_id, "output": "{}"}
        )
        after = await read_until(connection, "input_audio_buffer.dtmf_event_received")
    assert types_of(after) == [
        "conversation.item.added",
        "conversation.item.done",
        "input_audio_buffer.dtmf_event_received",
    ]


async def test_wait_for_a_refer_pauses_until_the_controller_refers_the_call(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """WaitFor('refer') holds the script until the call's REFER is answered, whatever its
    outcome (here a busy target: the call stays, the script goes on)."""
    emulator.faults.add(TransferFault("tel:+14155550111", "busy"))
    call = await answered(emulator, client, script=(WaitFor("refer"), Dtmf("9")))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.session.update(session={"type": "realtime", "instructions": "x"})
        await read_until(connection, "session.updated")
        assert "input_audio_buffer.dtmf_event_received" not in types_of(call.server_events)
        await client.realtime.calls.refer(call.call_id, target_uri="tel:+14155550111")
        await read_until(connection, "input_audio_buffer.dtmf_event_received")
    assert call.state is CallState.ACCEPTED


async def test_a_wait_that_never_ends_records_a_script_error(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A WaitFor past its timeout stops the script and says why."""
    call = await answered(emulator, client, script=(WaitFor("session.update", timeout=0.05),))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await emulator.wait_for(lambda: call.script_errors)
    assert "WaitFor(kind='session.update'" in call.script_errors[0]


async def test_a_server_error_step_sends_an_error_event(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """ServerError sends an error event that no client event caused."""
    call = await answered(emulator, client, script=(ServerError(code="overloaded"),))
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        error = await connection.recv()
    assert error.type == "error"
    assert (error.error.type, error.error.code, error.error.event_id) == (
        "server_error",
        "overloaded",
        None,
    )


async def test_a_text_only_session_answers_in_text(emulator: Emulator, client: AsyncOpenAI) -> None:
    """output_modalities ['text'] gives output_text events and no playback."""
    call = await answered(emulator, client, output_modalities=["text"])
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        await connection.response.create()
        kinds = types_of(await read_until(connection, "response.done"))
    assert "response.output_text.done" in kinds
    assert "output_audio_buffer.started" not in kinds
