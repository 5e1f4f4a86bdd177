"""Builders of the sideband's server events and their parts, as plain JSON-ready dicts.

Each builder gives one event shaped like the SDK's ``RealtimeServerEvent`` member of that
``type`` (with a fresh ``event_id``); item and response builders give the objects events
carry. Nothing here decides *when* an event is sent: that is the conversation's job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from callcenter.emulator.api_error import ApiError
from callcenter.emulator.ids import short_id

Event = dict[str, Any]

DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "marin"
DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI. Act like a human, but remember that you aren't "
    "a human. Your voice and personality should be warm and engaging. Talk quickly."
)
SESSION_TTL_SECONDS = 3600


def event(type_: str, **fields: Any) -> Event:
    """A server event of ``type_`` with a fresh ``event_id``."""
    return {"type": type_, "event_id": short_id("event"), **fields}


# -- session --------------------------------------------------------------------------------


def default_session() -> dict[str, Any]:
    """The session a SIP call starts with before the accepted config is applied."""
    vad = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": short_id("sess"),
        "model": DEFAULT_MODEL,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "expires_at": int(time.time()) + SESSION_TTL_SECONDS,
        "audio": {
            "input": {
                "format": {"type": "audio/pcmu"},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": vad,
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": DEFAULT_VOICE, "speed": 1.0},
        },
    }


def merge_config(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` applied over ``base``: objects merge key by key, anything else replaces.

    An object whose ``type`` changes (e.g. ``server_vad`` → ``semantic_vad``) replaces the old
    one whole, so no field of the old kind survives.
    """
    merged = dict(base)
    for key, value in patch.items():
        old = merged.get(key)
        same_kind = isinstance(old, dict) and old.get("type") == value.get("type", old.get("type"))
        if isinstance(value, dict) and isinstance(old, dict) and same_kind:
            merged[key] = merge_config(old, value)
        else:
            merged[key] = value
    return merged


def session_created(session: Mapping[str, Any]) -> Event:
    """``session.created`` with the whole session."""
    return event("session.created", session=dict(session))


def session_updated(session: Mapping[str, Any]) -> Event:
    """``session.updated`` with the whole session after the update."""
    return event("session.updated", session=dict(session))


def error(problem: ApiError, client_event_id: str | None = None) -> Event:
    """``error``, naming the client event that caused it (if any)."""
    return event("error", error=problem.event_error(client_event_id))


def rate_limits_updated(requests_remaining: int = 4999, tokens_remaining: int = 39000) -> Event:
    """``rate_limits.updated`` with a request and a token bucket."""
    limits = [
        {
            "name": "requests",
            "limit": 5000,
            "remaining": requests_remaining,
            "reset_seconds": 0.012,
        },
        {"name": "tokens", "limit": 40000, "remaining": tokens_remaining, "reset_seconds": 1.5},
    ]
    return event("rate_limits.updated", rate_limits=limits)


# -- items ----------------------------------------------------------------------------------


def user_audio_item(item_id: str, transcript: str | None = None) -> dict[str, Any]:
    """A caller's spoken turn as a conversation item."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


def assistant_item(item_id: str, status: str, text: str | None, *, audio: bool) -> dict[str, Any]:
    """An assistant message; ``text`` None gives the empty item a response starts with."""
    content: list[dict[str, Any]] = []
    if text is not None:
        part = (
            {"type": "output_audio", "transcript": text}
            if audio
            else {"type": "output_text", "text": text}
        )
        content.append(part)
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    """A function call the model makes."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": status,
        "name": name,
        "call_id": call_id,
        "arguments": arguments,
    }


def item_added(item: Mapping[str, Any], previous_item_id: str | None) -> Event:
    """``conversation.item.added``."""
    return event("conversation.item.added", previous_item_id=previous_item_id, item=dict(item))


def item_done(item: Mapping[str, Any], previous_item_id: str | None) -> Event:
    """``conversation.item.done``."""
    return event("conversation.item.done", previous_item_id=previous_item_id, item=dict(item))


def item_deleted(item_id: str) -> Event:
    """``conversation.item.deleted``."""
    return event("conversation.item.deleted", item_id=item_id)


def item_retrieved(item: Mapping[str, Any]) -> Event:
    """``conversation.item.retrieved``."""
    return event("conversation.item.retrieved", item=dict(item))


def item_truncated(item_id: str, content_index: int, audio_end_ms: int) -> Event:
    """``conversation.item.truncated``."""
    return event(
        "conversation.item.truncated",
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=audio_end_ms,
    )


# -- the caller's audio ---------------------------------------------------------------------


def speech_started(item_id: str, audio_start_ms: int) -> Event:
    """``input_audio_buffer.speech_started``."""
    return event(
        "input_audio_buffer.speech_started", item_id=item_id, audio_start_ms=audio_start_ms
    )


def speech_stopped(item_id: str, audio_end_ms: int) -> Event:
    """``input_audio_buffer.speech_stopped``."""
    return event("input_audio_buffer.speech_stopped", item_id=item_id, audio_end_ms=audio_end_ms)


def committed(item_id: str, previous_item_id: str | None) -> Event:
    """``input_audio_buffer.committed``."""
    return event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous_item_id)


def input_cleared() -> Event:
    """``input_audio_buffer.cleared``."""
    return event("input_audio_buffer.cleared")


def timeout_triggered(item_id: str, audio_start_ms: int, audio_end_ms: int) -> Event:
    """``input_audio_buffer.timeout_triggered`` (the caller stayed silent)."""
    return event(
        "input_audio_buffer.timeout_triggered",
        item_id=item_id,
        audio_start_ms=audio_start_ms,
        audio_end_ms=audio_end_ms,
    )


def dtmf_received(key: str) -> Event:
    """``input_audio_buffer.dtmf_event_received`` (the SDK's type has no ``event_id``)."""
    return {
        "type": "input_audio_buffer.dtmf_event_received",
        "event": key,
        "received_at": int(time.time()),
    }


def transcription_delta(item_id: str, delta: str) -> Event:
    """``conversation.item.input_audio_transcription.delta``."""
    return event(
        "conversation.item.input_audio_transcription.delta",
        item_id=item_id,
        content_index=0,
        delta=delta,
    )


def transcription_completed(item_id: str, transcript: str) -> Event:
    """``conversation.item.input_audio_transcription.completed`` with token usage."""
    tokens = max(1, len(transcript) // 4)
    usage = {
        "type": "tokens",
        "input_tokens": 10 + tokens,
        "output_tokens": tokens,
        "total_tokens": 10 + 2 * tokens,
        "input_token_details": {"audio_tokens": 10 + tokens, "text_tokens": 0},
    }
    return event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=0,
        transcript=transcript,
        usage=usage,
    )


def transcription_failed(item_id: str) -> Event:
    """``conversation.item.input_audio_transcription.failed``."""
    problem = {
        "type": "server_error",
        "code": "transcription_failed",
        "message": "Transcription failed.",
    }
    return event(
        "conversation.item.input_audio_transcription.failed",
        item_id=item_id,
        content_index=0,
        error=problem,
    )


# -- responses ------------------------------------------------------------------------------


def response_object(
    response_id: str,
    *,
    status: str,
    output: Sequence[Mapping[str, Any]],
    conversation_id: str | None,
    session: Mapping[str, Any],
    modalities: Sequence[str],
    metadata: Mapping[str, Any] | None,
    usage: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The ``response`` object of ``response.created`` / ``response.done``."""
    audio_out = session["audio"]["output"]
    voice = audio_out.get("voice")
    details = None
    if status in ("cancelled", "incomplete", "failed"):
        details = {"type": status, "reason": reason}
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": details,
        "output": [dict(item) for item in output],
        "conversation_id": conversation_id,
        "output_modalities": list(modalities),
        "max_output_tokens": session.get("max_output_tokens", "inf"),
        "audio": {
            "output": {
                "format": audio_out.get("format"),
                "voice": voice if isinstance(voice, str) else None,
            }
        },
        "usage": dict(usage) if usage is not None else None,
        "metadata": dict(metadata) if metadata is not None else None,
    }


def usage(input_tokens: int, output_text: str, *, audio: bool) -> dict[str, Any]:
    """Token usage of one response: ``input_tokens`` in, ``output_text`` out."""
    text_out = max(1, len(output_text) // 4)
    audio_out = 3 * text_out if audio else 0
    cached = (input_tokens // 64) * 32
    return {
        "total_tokens": input_tokens + text_out + audio_out,
        "input_tokens": input_tokens,
        "output_tokens": text_out + audio_out,
        "input_token_details": {
            "text_tokens": input_tokens // 2,
            "audio_tokens": input_tokens - input_tokens // 2,
            "image_tokens": 0,
            "cached_tokens": cached,
            "cached_tokens_details": {"text_tokens": cached, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def response_created(response: Mapping[str, Any]) -> Event:
    """``response.created``."""
    return event("response.created", response=dict(response))


def response_done(response: Mapping[str, Any]) -> Event:
    """``response.done``."""
    return event("response.done", response=dict(response))


def output_item_added(response_id: str, output_index: int, item: Mapping[str, Any]) -> Event:
    """``response.output_item.added``."""
    return event(
        "response.output_item.added",
        response_id=response_id,
        output_index=output_index,
        item=dict(item),
    )


def output_item_done(response_id: str, output_index: int, item: Mapping[str, Any]) -> Event:
    """``response.output_item.done``."""
    return event(
        "response.output_item.done",
        response_id=response_id,
        output_index=output_index,
        item=dict(item),
    )


def content_part(
    type_: str, response_id: str, item_id: str, output_index: int, text: str, *, audio: bool
) -> Event:
    """``response.content_part.added`` / ``.done`` (``type_`` says which)."""
    part = {"type": "audio", "transcript": text} if audio else {"type": "text", "text": text}
    return event(
        type_,
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        content_index=0,
        part=part,
    )


def text_delta(
    response_id: str, item_id: str, output_index: int, delta: str, *, audio: bool
) -> Event:
    """``response.output_audio_transcript.delta`` (audio) or ``response.output_text.delta``."""
    type_ = "response.output_audio_transcript.delta" if audio else "response.output_text.delta"
    return event(
        type_,
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        content_index=0,
        delta=delta,
    )


def text_done(
    response_id: str, item_id: str, output_index: int, text: str, *, audio: bool
) -> Event:
    """``response.output_audio_transcript.done`` (audio) or ``response.output_text.done``."""
    if audio:
        type_, field = "response.output_audio_transcript.done", "transcript"
    else:
        type_, field = "response.output_text.done", "text"
    return event(
        type_,
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        content_index=0,
        **{field: text},
    )


def arguments_delta(
    response_id: str, item_id: str, output_index: int, call_id: str, delta: str
) -> Event:
    """``response.function_call_arguments.delta``."""
    return event(
        "response.function_call_arguments.delta",
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        call_id=call_id,
        delta=delta,
    )


def arguments_done(
    response_id: str, item_id: str, output_index: int, call_id: str, name: str, arguments: str
) -> Event:
    """``response.function_call_arguments.done``."""
    return event(
        "response.function_call_arguments.done",
        response_id=response_id,
        item_id=item_id,
        output_index=output_index,
        call_id=call_id,
        name=name,
        arguments=arguments,
    )


def output_audio_buffer(type_: str, response_id: str) -> Event:
    """``output_audio_buffer.started`` / ``.stopped`` / ``.cleared``."""
    return event(f"output_audio_buffer.{type_}", response_id=response_id)


def chunks(text: str, size: int = 3) -> list[str]:
    """``text`` cut into deltas of ``size`` words (the last keeps the remainder)."""
    words = text.split(" ")
    pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [piece + (" " if i < len(pieces) - 1 else "") for i, piece in enumerate(pieces)]
