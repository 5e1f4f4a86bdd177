"""``POST /v1/responses``: the Responses API, enough for Structured Outputs (post-call analysis).

The answer is deterministic: the next of ``structured_answers`` when a test queued one,
else a value built from the requested JSON schema (the first enum value, ``true``, ``1``, a
string naming the field). A request without ``text.format`` of type ``json_schema`` gets a
plain sentence. Bearer auth as on every endpoint.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from callcenter.emulator.api_error import bad_request
from callcenter.emulator.host import EmulatorHost
from callcenter.emulator.http_errors import bearer_problem, error_response
from callcenter.emulator.ids import short_id

__all__ = ["ResponsesApi", "example_of"]


class ResponsesApi:
    """The aiohttp handler of ``POST /v1/responses``, acting on its host."""

    def __init__(self, host: EmulatorHost) -> None:
        self._host = host

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the app."""
        return [web.post("/v1/responses", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one Responses API request."""
        problem = bearer_problem(request, self._host.api_key)
        if problem is not None:
            return error_response(problem)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return error_response(bad_request("The body is not JSON.", "invalid_json"))
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error_response(bad_request("model is required.", "missing_required_parameter"))
        self._host.responses_requests.append(body)
        text_format = (body.get("text") or {}).get("format") or {}
        if text_format.get("type") == "json_schema":
            if self._host.structured_answers:
                value: Any = self._host.structured_answers.pop(0)
            else:
                value = example_of(text_format.get("schema") or {}, "answer")
            text = json.dumps(value)
        else:
            text = "This is the emulator's answer."
        return web.json_response(_response(body["model"], text))


def example_of(schema: dict[str, Any], name: str) -> Any:
    """A deterministic value that follows ``schema`` (the subset Structured Outputs uses)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: example_of(value, key) for key, value in properties.items()}
    if kind == "array":
        return [example_of(schema.get("items") or {}, name)]
    if kind == "boolean":
        return True
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    return f"The {name} of the call, from the emulator."


def _response(model: str, text: str) -> dict[str, Any]:
    """A completed Response with one assistant message (the SDK's ``Response`` shape)."""
    return {
        "id": short_id("resp", 32),
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "output": [
            {
                "type": "message",
                "id": short_id("msg", 32),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 120,
        },
    }
