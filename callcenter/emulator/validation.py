"""Validation of request bodies against the SDK's TypedDicts, answered the way OpenAI answers.

Three checks run in turn, each giving the first problem as an :class:`ApiError` (400):
unknown keys (the SDK's TypedDicts list every known key, nested ones included), types
(pydantic over the same TypedDict) and the ranges the types cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai.types.realtime import CallAcceptParams
from openai.types.realtime.realtime_session_create_request_param import (
    RealtimeSessionCreateRequestParam,
)

from callcenter.emulator.api_error import ApiError, bad_request
from callcenter.sdk_types import first_problem, unknown_key

REFER_SCHEMES = ("tel:", "sip:", "sips:")


def check_accept_body(body: object) -> ApiError | None:
    """Check the body of ``POST …/accept`` (a session config with ``type: "realtime"``)."""
    return check_session(body, CallAcceptParams, prefix="")


def check_session(body: object, schema: Any = None, *, prefix: str = "session.") -> ApiError | None:
    """Check a session config (accept body or ``session.update``'s ``session``)."""
    if not isinstance(body, dict):
        param = prefix.rstrip(".") or None
        return bad_request("The session config must be a JSON object.", "invalid_type", param)
    if "type" not in body:
        return missing(prefix + "type")
    if body["type"] != "realtime":
        return invalid_value(prefix + "type", body["type"], "'realtime'")
    return check_typed(body, schema or RealtimeSessionCreateRequestParam, prefix) or _ranges(
        body, prefix
    )


def check_reject_body(body: object) -> ApiError | None:
    """Check the body of ``POST …/reject``: an optional SIP ``status_code`` (400-699)."""
    if not isinstance(body, dict):
        return bad_request("The request body must be a JSON object.", "invalid_type")
    for key in body:
        if key != "status_code":
            return unknown(key)
    code = body.get("status_code")
    if code is not None and (not _is_int(code) or not 400 <= code <= 699):
        return bad_request(
            f"Invalid 'status_code': {code!r}. Expected a SIP status code from 400 to 699.",
            "invalid_value",
            "status_code",
        )
    return None


def check_refer_body(body: object) -> ApiError | None:
    """Check the body of ``POST …/refer``: a ``target_uri`` of scheme tel:, sip: or sips:."""
    if not isinstance(body, dict):
        return bad_request("The request body must be a JSON object.", "invalid_type")
    for key in body:
        if key != "target_uri":
            return unknown(key)
    if "target_uri" not in body:
        return missing("target_uri")
    target = body["target_uri"]
    if not isinstance(target, str):
        return bad_request(
            "Invalid type for 'target_uri': expected a string.", "invalid_type", "target_uri"
        )
    scheme = next((s for s in REFER_SCHEMES if target.lower().startswith(s)), None)
    if scheme is None or not target[len(scheme) :].strip():
        return bad_request(
            f"Invalid 'target_uri': {target!r}. Expected a tel:, sip: or sips: URI.",
            "invalid_value",
            "target_uri",
        )
    return None


def check_hangup_body(body: object) -> ApiError | None:
    """Check the body of ``POST …/hangup``: nothing, or an empty object."""
    if body is None or body == {}:
        return None
    if isinstance(body, dict):
        return unknown(next(iter(body)))
    return bad_request("The request body must be a JSON object.", "invalid_type")


def check_typed(value: object, schema: Any, prefix: str = "") -> ApiError | None:
    """Unknown keys first, then types, of ``value`` against the SDK TypedDict ``schema``."""
    stray = unknown_key(value, schema)
    if stray is not None:
        return unknown(prefix + dotted(stray))
    problem = first_problem(value, schema)
    if problem is None:
        return None
    if problem.kind == "missing":
        return missing(prefix + dotted((*problem.path, problem.error["loc"][-1])))
    param = prefix + dotted(problem.path)
    kind = "invalid_type" if problem.kind.endswith(("_type", "_parsing")) else "invalid_value"
    return bad_request(f"Invalid value for '{param}': {problem.error['msg']}.", kind, param)


def dotted(path: tuple[str | int, ...]) -> str:
    """A data path as the API writes it: ``item.content[0].text``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def missing(param: str) -> ApiError:
    """A ``missing_required_parameter`` error."""
    return bad_request(
        f"Missing required parameter: '{param}'.", "missing_required_parameter", param
    )


def unknown(param: str) -> ApiError:
    """An ``unknown_parameter`` error."""
    return bad_request(f"Unknown parameter: '{param}'.", "unknown_parameter", param)


def invalid_value(param: str, value: object, supported: str) -> ApiError:
    """An ``invalid_value`` error listing what is supported."""
    return bad_request(
        f"Invalid value: {value!r}. Supported values are: {supported}.", "invalid_value", param
    )


def _ranges(body: Mapping[str, Any], prefix: str) -> ApiError | None:
    tokens = body.get("max_output_tokens")
    if tokens is not None and tokens != "inf" and not (_is_int(tokens) and 1 <= tokens <= 4096):
        return invalid_value(
            prefix + "max_output_tokens", tokens, "an integer from 1 to 4096, or 'inf'"
        )
    modalities = body.get("output_modalities")
    if modalities is not None and len(modalities) != 1:
        return invalid_value(prefix + "output_modalities", modalities, "['audio'] or ['text']")
    audio = body.get("audio") or {}
    speed = (audio.get("output") or {}).get("speed")
    if speed is not None and not 0.25 <= speed <= 1.5:
        return invalid_value(prefix + "audio.output.speed", speed, "a number from 0.25 to 1.5")
    vad = (audio.get("input") or {}).get("turn_detection") or {}
    if vad.get("threshold") is not None and not 0 <= vad["threshold"] <= 1:
        param = prefix + "audio.input.turn_detection.threshold"
        return invalid_value(param, vad["threshold"], "a number from 0 to 1")
    truncation = body.get("truncation")
    if isinstance(truncation, dict) and not 0 <= truncation["retention_ratio"] <= 1:
        param = prefix + "truncation.retention_ratio"
        return invalid_value(param, truncation["retention_ratio"], "a number from 0 to 1")
    for index, tool in enumerate(body.get("tools") or ()):
        if tool.get("type", "function") == "function" and not tool.get("name"):
            return missing(f"{prefix}tools[{index}].name")
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
