"""The strict JSON schema an analysis answers, and the instructions that go with it. Pure."""

from __future__ import annotations

from typing import Any

from callcenter.analysis.config import Analysis

__all__ = ["instructions", "json_schema"]


def json_schema(analysis: Analysis) -> dict[str, Any]:
    """A Structured Outputs schema (strict: every property required, nothing else allowed)."""
    properties: dict[str, Any] = {}
    if analysis.summary:
        properties["summary"] = {"type": "string", "description": "A short summary of the call."}
    if analysis.success is not None:
        properties["success"] = _object(
            {
                "met": {"type": "boolean", "description": analysis.success},
                "reason": {"type": "string"},
            }
        )
    fields: dict[str, Any] = {}
    for name, kind in analysis.extract.items():
        fields[name] = (
            {"type": "string", "enum": list(kind)} if isinstance(kind, tuple) else {"type": kind}
        )
    properties["extracted"] = _object(fields)
    return _object(properties)


def instructions(analysis: Analysis) -> str:
    """What the model is asked to do with the transcript."""
    parts = ["You analyse the transcript of a phone call between a caller and a voice agent."]
    if analysis.summary:
        parts.append("Summarise the call in two or three sentences.")
    if analysis.success is not None:
        parts.append(f"Judge whether this was met, with a reason: {analysis.success}")
    if analysis.extract:
        parts.append("Extract the requested fields from what was said.")
    return " ".join(parts)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
