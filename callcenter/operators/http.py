"""HTTP helpers the operator API and the console share: errors, the client, hostile input.

Nothing here echoes a Python exception: every refusal is a fixed sentence naming what was
wrong, so that an error body never shows the server's internals.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from flask import Response, jsonify, request

from callcenter.operators.actions import Outcome

__all__ = [
    "LOOPBACK",
    "Reply",
    "client_address",
    "error",
    "event_id",
    "json_body",
    "odd_request",
]

LOOPBACK: Final = frozenset({"127.0.0.1", "::1"})  # a proxy here (nginx) passes X-Real-IP
MAX_JSON_BODY: Final = 64 * 1024  # an operator's command is a few hundred bytes
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
MAX_CALL_ID: Final = 128
_CALL_ID: Final = re.compile(r"[A-Za-z0-9_.:-]+")

Reply = tuple[Response, int]


def error(status: int, code: str, message: str) -> Reply:
    """A JSON error reply."""
    return jsonify(error={"code": code, "message": message}), status


def client_address() -> str:
    """The client's IP address: a local proxy's ``X-Real-IP``, or the peer's address."""
    peer = request.remote_addr or "unknown"
    real = request.headers.get("X-Real-IP", "").strip()
    if not real or peer not in LOOPBACK:
        return peer
    try:
        return str(ipaddress.ip_address(real))
    except ValueError:  # not an address: the proxy did not set it, the client did
        return peer


def odd_request() -> Outcome | None:
    """A refusal of a URL no client of ours sends: an impossible call id (404), or control
    characters (400), which reach no query (PostgreSQL refuses NUL in text)."""
    call_id = (request.view_args or {}).get("call_id")
    if isinstance(call_id, str) and not (
        len(call_id) <= MAX_CALL_ID and _CALL_ID.fullmatch(call_id)
    ):
        return Outcome(404, "unknown_call", "No call has that id.")
    values = [request.path, *request.args.keys(), *request.args.values()]
    if any(_CONTROL.search(value) for value in values):
        return Outcome(400, "bad_request", "The URL holds a control character.")
    return None


def event_id(value: str | None) -> int:
    """An event id from a query or ``Last-Event-ID`` (a browser's reconnect); 0 if none."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 19 else 0


def json_body() -> object:
    """The request's JSON body, or None when it is missing, oversized, not JSON or too deep."""
    if (request.content_length or 0) > MAX_JSON_BODY:
        return None
    try:
        return request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes
        return None
