"""The SDK's realtime types as the emulator's contract, in both directions.

Client events the controller sends are checked against the SDK's ``RealtimeClientEventParam``
TypedDicts (known ``type``, required keys, no unknown keys, types); a problem becomes the
``error`` event OpenAI would send. Server events the emulator sends can be checked against
the SDK's ``RealtimeServerEvent`` models (the self-check tests turn on).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Any

from openai.types.realtime import RealtimeClientEventParam, RealtimeServerEvent
from openai.types.realtime.response_create_event_with_references_param import (
    ResponseCreateEventWithReferencesParam,
)
from pydantic import BaseModel, ValidationError

from callcenter.emulator.api_error import ApiError, bad_request
from callcenter.emulator.validation import check_session, check_typed, invalid_value


def check_client_event(event: object) -> ApiError | None:
    """The problem OpenAI would report for this client event, or None if it is valid."""
    if not isinstance(event, dict):
        return bad_request("The event must be a JSON object.", "invalid_type")
    kind = event.get("type")
    schema = _client_schemas().get(kind) if isinstance(kind, str) else None
    if schema is None:
        supported = ", ".join(f"'{name}'" for name in sorted(_client_schemas()))
        return invalid_value("type", kind, supported)
    problem = check_typed(event, schema)
    if problem is None and kind == "session.update":
        problem = check_session(event["session"], prefix="session.")
    return problem


def server_event_problem(event: Mapping[str, Any]) -> str | None:
    """Why ``event`` does not parse as the SDK's ``RealtimeServerEvent``, or None."""
    model = _server_models().get(str(event.get("type")))
    if model is None:
        return f"unknown server event type {event.get('type')!r}"
    try:
        model.model_validate(dict(event))
    except ValidationError as exc:
        return f"{event.get('type')}: {exc}"
    return None


@functools.cache
def _client_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for member in typing.get_args(RealtimeClientEventParam):
        (kind,) = typing.get_args(typing.get_type_hints(member)["type"])
        schemas[kind] = member
    # The SDK sends response.create in the form that also allows item references.
    schemas["response.create"] = ResponseCreateEventWithReferencesParam
    return schemas


@functools.cache
def _server_models() -> dict[str, type[BaseModel]]:
    union = typing.get_args(RealtimeServerEvent)[0]
    models: dict[str, type[BaseModel]] = {}
    for member in typing.get_args(union):
        (kind,) = typing.get_args(member.model_fields["type"].annotation)
        models[kind] = member
    return models
