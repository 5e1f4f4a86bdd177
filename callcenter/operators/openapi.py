"""The OpenAPI 3.1 document of the operator API, served at ``/api/v1/openapi.json``.

Hand-written next to the routes of :mod:`callcenter.operators.api`; a schemathesis test runs
it against the real server, so a route and its description cannot drift apart unnoticed.
"""

from __future__ import annotations

import copy
from typing import Any

from callcenter.call.vocabulary import CallOutcome, CallStatus, DecisionKind, EventKind

__all__ = ["STATUSES", "openapi_document"]

STATUSES = tuple(CallStatus)  # the values ?status= takes

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
            "200": _json("The call's session got the command.", "ActionResult"),
            "202": _json("Queued; no worker took it within the wait.", "ActionResult"),
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
_TIMELINE = {
    "allOf": [
        {"$ref": "#/components/schemas/Call"},
        {
            "type": "object",
            "required": ["transcript", "tool_calls", "escalations", "events", "handoff", "end"],
            "properties": {
                "sip_headers": {"type": "array", "items": {"type": "array"}},
                "decision_detail": {"type": "object"},
                "transcript": {"type": "array", "items": {"type": "object"}},
                "tool_calls": _EVENTS,
                "dtmf": _EVENTS,
                "escalations": _EVENTS,
                "transfer": _EVENTS,
                "operator": _EVENTS,
                "handoff": {"type": "object"},
                "end": {"type": "object"},
                "usage": {"type": ["object", "null"]},
                "events": _EVENTS,
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
_ACTION_RESULT = {
    "type": "object",
    "required": ["call_id", "action", "result"],
    "properties": {
        "call_id": {"type": "string"},
        "action": {"type": "string", "enum": ["transfer", "hangup", "instruct"]},
        "result": {"type": "string"},
        "operator": {"type": "string"},
        "command_id": {"type": ["integer", "null"]},
    },
}


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
                        {"name": "route", "in": "query", "schema": {"type": "string"}},
                        {"name": "number", "in": "query", "schema": {"type": "string"}},
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
            },
        },
    }
    return copy.deepcopy(document)
