"""The OpenAPI 3.1 document of the operator API, served at ``/api/v1/openapi.json``.

Hand-written next to the routes of :mod:`callcenter.operators.api`; a schemathesis test runs
it against the real server, so a route and its description cannot drift apart unnoticed.
"""

from __future__ import annotations

import copy
from typing import Any

from callcenter.call.vocabulary import CallOutcome, DecisionKind, EventKind
from callcenter.operators.filters import MAX_WORDS, OUTCOMES, STATUSES

__all__ = ["openapi_document"]

_NULLABLE_TEXT = {"type": ["string", "null"]}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_CALL_ID = {
    "name": "call_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_REFUSED = {
    "401": _error("No bearer token, or a wrong one."),
    "403": _error("The operator API is disabled (no tokens), or the token's role may not do this."),
    "429": _error("Too many failed logins from this address; see Retry-After."),
}


def _action(summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [_CALL_ID],
        "responses": {
            "200": _json(
                "The call's session got the command (a transfer: it is over, transferred or "
                "transfer_failed).",
                "ActionResult",
            ),
            "202": _json(
                "Queued; no worker took it within the wait (a transfer: still transferring).",
                "ActionResult",
            ),
            "400": _error("The body is not a JSON object."),
            "404": _error("No such call."),
            "409": _error("The call is not live."),
            "422": _error("The body is invalid."),
            **_REFUSED,
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


_CALL = {
    "type": "object",
    "required": ["call_id", "status", "decision", "received_at"],
    "properties": {
        "call_id": {"type": "string"},
        "status": {
            "type": "string",
            "enum": list(STATUSES),
        },
        "route": _NULLABLE_TEXT,
        "decision": {"type": "string", "enum": list(DecisionKind)},
        "outcome": {"type": ["string", "null"], "enum": [*CallOutcome, None]},
        "caller_number": _NULLABLE_TEXT,
        "caller_name": _NULLABLE_TEXT,
        "dialled_number": _NULLABLE_TEXT,
        "target": _NULLABLE_TEXT,
        "ticket": _NULLABLE_TEXT,
        "escalation_trigger": _NULLABLE_TEXT,
        "received_at": {"type": "string", "format": "date-time"},
        "answered_at": _NULLABLE_TIME,
        "ended_at": _NULLABLE_TIME,
    },
}
_EVENT = {
    "type": "object",
    "required": ["id", "at", "kind", "data"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string", "examples": list(EventKind)},
        "data": {"type": "object"},
    },
}
_EVENTS = {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
_NULLABLE_MS = {"type": ["number", "null"], "minimum": 0}
_LATENCY = {
    "type": "object",
    "description": "The caller's wait for the voice, in milliseconds; null where not measured. "
    "greeting_ms: the accept sent to the greeting's audio starting; turn_*: the caller "
    "stopped speaking to the reply's audio starting (nearest-rank percentiles); tool_ms: "
    "the time our function tools ran inside the turns; model_*: the turns' waits less it.",
    "required": [
        "greeting_ms",
        "turns",
        "turn_p50_ms",
        "turn_p90_ms",
        "turn_max_ms",
        "tool_ms",
        "model_p50_ms",
        "model_p90_ms",
    ],
    "properties": {
        "greeting_ms": _NULLABLE_MS,
        "turns": {"type": "integer", "minimum": 0},
        "turn_p50_ms": _NULLABLE_MS,
        "turn_p90_ms": _NULLABLE_MS,
        "turn_max_ms": _NULLABLE_MS,
        "tool_ms": _NULLABLE_MS,
        "model_p50_ms": _NULLABLE_MS,
        "model_p90_ms": _NULLABLE_MS,
    },
}
_DELIVERY = {
    "type": "object",
    "required": ["event_id", "type", "url", "status", "attempts"],
    "properties": {
        "event_id": {"type": "string"},
        "type": {"type": "string"},
        "url": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer"},
        "next_at": _NULLABLE_TIME,
        "last_answer": _NULLABLE_TEXT,
        "delivered_at": _NULLABLE_TIME,
    },
}
_TIMELINE = {
    "allOf": [
        {"$ref": "#/components/schemas/Call"},
        {
            "type": "object",
            "required": [
                "transcript",
                "tool_calls",
                "escalations",
                "events",
                "handoff",
                "end",
                "latency",
            ],
            "properties": {
                "sip_headers": {"type": "array", "items": {"type": "array"}},
                "decision_detail": {"type": "object"},
                "transcript": {"type": "array", "items": {"type": "object"}},
                "tool_calls": _EVENTS,
                "dtmf": _EVENTS,
                "escalations": _EVENTS,
                "transfer": _EVENTS,
                "transfers": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
                "operator": _EVENTS,
                "handoff": {"type": "object"},
                "end": {"type": "object"},
                "usage": {"type": ["object", "null"]},
                "latency": {"$ref": "#/components/schemas/Latency"},
                "analysis": {"type": ["object", "null"]},
                "events": _EVENTS,
                "deliveries": {
                    "type": "array",
                    "items": _DELIVERY,
                    "description": "The notifications sent about the call; admins only.",
                },
            },
        },
    ]
}
_AUDIT_ENTRY = {
    "type": "object",
    "required": ["id", "at", "action", "result"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "operator": _NULLABLE_TEXT,
        "action": {"type": "string"},
        "call_id": _NULLABLE_TEXT,
        "result": {"type": "string"},
        "client": _NULLABLE_TEXT,
        "detail": {"type": "object"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_ATTEMPT = {
    "type": "object",
    "required": ["target", "result", "ended_at"],
    "properties": {
        "target": _NULLABLE_TEXT,
        "uri": _NULLABLE_TEXT,
        "result": {"type": "string", "enum": ["transferred", "refused", "unanswered"]},
        "reason": _NULLABLE_TEXT,
        "started_at": _NULLABLE_TIME,
        "ended_at": {"type": "string", "format": "date-time"},
    },
}
_ACTION_RESULT = {
    "type": "object",
    "required": ["call_id", "action", "result"],
    "properties": {
        "call_id": {"type": "string"},
        "action": {"type": "string", "enum": ["transfer", "hangup", "instruct"]},
        "result": {
            "type": "string",
            "examples": ["delivered", "pending", "transferred", "transfer_failed", "transferring"],
        },
        "operator": {"type": "string"},
        "command_id": {"type": ["integer", "null"]},
        "target": {**_NULLABLE_TEXT, "description": "a transfer: the target that took the call"},
        "targets": {
            "type": "array",
            "description": "a transfer: every target tried, in order",
            "items": {"$ref": "#/components/schemas/Attempt"},
        },
    },
}


_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_MEAN = {"type": ["number", "null"], "minimum": 0}
_COUNT = {"type": "integer", "minimum": 0}
_STATS = {
    "type": "object",
    "required": [
        "since", "until", "live", "calls", "by_outcome", "served", "containment_rate",
        "escalation_rate", "average_handle_seconds", "tokens_per_call", "per_hour",
        "voice_latency",
    ],
    "properties": {
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
        "live": {
            "type": "object",
            "required": ["calls", "waiting_for_human"],
            "properties": {"calls": _COUNT, "waiting_for_human": _COUNT},
        },
        "calls": _COUNT,
        "by_outcome": {"type": "object", "additionalProperties": _COUNT},
        "served": _COUNT,
        "containment_rate": _RATE,
        "escalation_rate": _RATE,
        "average_handle_seconds": _MEAN,
        "tokens_per_call": _MEAN,
        "per_hour": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hour", "calls"],
                "properties": {"hour": {"type": "string", "format": "date-time"}, "calls": _COUNT},
            },
        },
        "voice_latency": {
            "type": ["object", "null"],
            "required": ["calls", "p50_ms", "p95_ms"],
            "properties": {"calls": _COUNT, "p50_ms": _MEAN, "p95_ms": _MEAN},
        },
    },
}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    """The whole document (a new dict each time)."""
    time_param = {"in": "query", "schema": {"type": "string", "format": "date-time"}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "callcenter operator API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/calls": {
                "get": {
                    "summary": "List calls, newest first.",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(STATUSES)},
                        },
                        {
                            "name": "outcome",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(OUTCOMES)},
                        },
                        {"name": "route", "in": "query", "schema": {"type": "string"}},
                        {"name": "number", "in": "query", "schema": {"type": "string"}},
                        {"name": "ticket", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "text",
                            "in": "query",
                            "description": f"Words of one transcript line (at most {MAX_WORDS}).",
                            "schema": {"type": "string"},
                        },
                        {"name": "since", **time_param},
                        {"name": "until", **time_param},
                        _LIMIT,
                        {
                            "name": "cursor",
                            "in": "query",
                            "schema": {"type": "string", "minLength": 1},
                        },
                    ],
                    "responses": {
                        "200": _json("A page of calls.", "CallPage"),
                        "400": _error("A bad filter, limit or cursor."),
                        **_REFUSED,
                    },
                }
            },
            "/calls/{call_id}": {
                "get": {
                    "summary": "One call's whole timeline.",
                    "parameters": [_CALL_ID],
                    "responses": {
                        "200": _json("The timeline.", "Timeline"),
                        "404": _error("No such call."),
                        **_REFUSED,
                    },
                }
            },
            "/calls/{call_id}/stream": {
                "get": {
                    "summary": "Server-Sent Events of the call's events until it ends.",
                    "parameters": [_CALL_ID],
                    "responses": {
                        "200": {
                            "description": "An event stream.",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "404": _error("No such call."),
                        "503": _error("This worker serves its cap of streams; see Retry-After."),
                        **_REFUSED,
                    },
                }
            },
            "/calls/{call_id}/transfer": {
                "post": _action(
                    "Transfer a live call to a target name or (where allowed) a URI.",
                    {
                        "type": "object",
                        "required": ["target"],
                        "properties": {"target": {"type": "string", "minLength": 1}},
                    },
                )
            },
            "/calls/{call_id}/hangup": {"post": _action("Hang a live call up.", None)},
            "/calls/{call_id}/instruct": {
                "post": _action(
                    "Give the agent a supervisor's instruction.",
                    {
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string", "minLength": 1}},
                    },
                )
            },
            "/stats": {
                "get": {
                    "summary": "The dashboard's figures for the calls received in a window.",
                    "parameters": [
                        {
                            "name": "since",
                            "description": "Default: midnight UTC today.",
                            **time_param,
                        },
                        {"name": "until", "description": "Default: now.", **time_param},
                    ],
                    "responses": {
                        "200": _json("The figures.", "Stats"),
                        "400": _error("A bad time, or a window not from 0 to 31 days long."),
                        **_REFUSED,
                    },
                }
            },
            "/audit": {
                "get": {
                    "summary": "The audit trail, newest first (admin role only).",
                    "description": "Who did what to which call, refusals included. "
                    "result=refused matches every refusal (results refused:STATUS:CODE).",
                    "parameters": [
                        {"name": "operator", "in": "query", "schema": {"type": "string"}},
                        {"name": "call_id", "in": "query", "schema": {"type": "string"}},
                        {"name": "action", "in": "query", "schema": {"type": "string"}},
                        {"name": "result", "in": "query", "schema": {"type": "string"}},
                        {"name": "since", **time_param},
                        {"name": "until", **time_param},
                        _LIMIT,
                        {"name": "before", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": _json("A page of the audit trail.", "AuditPage"),
                        "400": _error("A bad filter, limit or before."),
                        **_REFUSED,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Call": _CALL,
                "Event": _EVENT,
                "Timeline": _TIMELINE,
                "Latency": _LATENCY,
                "CallPage": {
                    "type": "object",
                    "required": ["calls", "next_cursor"],
                    "properties": {
                        "calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
                        "next_cursor": _NULLABLE_TEXT,
                    },
                },
                "AuditPage": {
                    "type": "object",
                    "required": ["entries", "next_before"],
                    "properties": {
                        "entries": {"type": "array", "items": _AUDIT_ENTRY},
                        "next_before": {"type": ["integer", "null"]},
                    },
                },
                "ActionResult": _ACTION_RESULT,
                "Attempt": _ATTEMPT,
                "Stats": _STATS,
            },
        },
    }
    return copy.deepcopy(document)
