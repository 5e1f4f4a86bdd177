"""The operator API under ``/api/v1``: list and read calls, act on live ones, stream, audit.

Every route but the OpenAPI document needs ``Authorization: Bearer <token>`` (see
:mod:`callcenter.operators.auth`) whose role allows it (:mod:`callcenter.operators.roles`: a
refusal is 403 ``forbidden``); every action, and every refusal, is written to the audit
trail. Commands reach the worker holding the call through
:mod:`callcenter.operators.commands`. Errors are JSON ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from flask import Blueprint, Response, g, jsonify, request, stream_with_context

from callcenter.errors import CallcenterError
from callcenter.operators.auth import bearer_token
from callcenter.operators.filters import STATUSES, FilterError, call_filter
from callcenter.operators.http import (
    Reply,
    client_address,
    error,
    event_id,
    json_body,
    odd_request,
)
from callcenter.operators.openapi import openapi_document
from callcenter.operators.roles import Permission, Role, allowed, refusal_message
from callcenter.operators.services import operator_services
from callcenter.operators.stats import stats_json
from callcenter.operators.stream import call_events_stream
from callcenter.operators.views import (
    audit_json,
    call_json,
    decode_cursor,
    deliveries_json,
    encode_cursor,
    timeline_json,
)
from callcenter.store.operators import AuditFilter

__all__ = ["api"]

MAX_LIMIT: Final = 200
DEFAULT_LIMIT: Final = 50
MAX_STATS_WINDOW: Final = timedelta(days=31)
MAX_ID: Final = 2**63 - 1  # a BIGINT; a larger ``before`` is no id of ours
PUBLIC_ENDPOINTS: Final = frozenset({"operator_api.openapi_json"})
LIMIT_MESSAGE: Final = f"limit must be an integer from 1 to {MAX_LIMIT}."
NEEDS: Final = {  # what each endpoint asks of a role; any other endpoint reads
    "operator_api.list_audit": Permission.AUDIT,
    "operator_api.transfer_call": Permission.TRANSFER,
    "operator_api.hangup_call": Permission.HANGUP,
    "operator_api.instruct_call": Permission.INSTRUCT,
}

api = Blueprint("operator_api", __name__, url_prefix="/api/v1")


class BadQuery(CallcenterError):
    """A query parameter is unusable; ``message`` is the fixed sentence to answer with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@api.before_request
def authenticate() -> Reply | None:
    """Refuse odd URLs, and requests without a valid bearer token (slowing down failures)."""
    odd = odd_request()
    if odd is not None:
        return error(odd.status, odd.code, odd.message)
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    operators = operator_services()
    if not operators.tokens.enabled:
        return error(403, "operator_api_disabled", "operator API disabled: no operator tokens")
    client = client_address()
    wait = operators.limiter.retry_after(client)
    if wait is not None:
        response, status = error(429, "too_many_failures", "too many failed logins; wait")
        response.headers["Retry-After"] = str(wait)
        return response, status
    token = bearer_token(request.headers.get("Authorization"))
    found = operators.tokens.operator(token) if token is not None else None
    if found is None:
        operators.limiter.failed(client)
        result = "missing_token" if token is None else "wrong_token"
        operators.audit.record(
            operator=None,
            action="login",
            call_id=None,
            result=result,
            client=client,
            detail={"path": request.path},
        )
        response, status = error(401, "unauthorized", "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="callcenter"'
        return response, status
    g.operator, g.role = found.name, found.role
    return _refusal(found.name, found.role, client)


def _refusal(name: str, role: Role, client: str) -> Reply | None:
    """403 (audited) when ``role`` may not do what this endpoint does; None if it may."""
    permission = NEEDS.get(request.endpoint or "", Permission.READ)
    if allowed(role, permission):
        return None
    call_id = (request.view_args or {}).get("call_id")
    operator_services().audit.record(
        operator=name,
        action=permission.value,
        call_id=call_id if isinstance(call_id, str) else None,
        result="refused:403:forbidden",
        client=client,
        detail={"path": request.path, "role": role.value},
    )
    return error(403, "forbidden", refusal_message(role, permission))


# -- reading -----------------------------------------------------------------------------------


@api.get("/openapi.json")
def openapi_json() -> Reply:
    """The OpenAPI 3.1 document of this API (no token needed)."""
    return jsonify(openapi_document()), 200


@api.get("/calls")
def list_calls() -> Reply:
    """Calls, newest first, filtered and paginated with ``limit`` and ``cursor``."""
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        return error(400, "bad_status", f"status must be one of {', '.join(STATUSES)}.")
    try:
        limit = _limit_arg()
        window = _time_arg("since"), _time_arg("until")
        after = _cursor_arg()
        where = call_filter(request.args, since=window[0], until=window[1])
    except BadQuery as exc:
        return error(400, "bad_query", exc.message)
    except FilterError as exc:
        return error(400, "bad_query", str(exc))
    found = operator_services().store.search_calls(where, limit=limit + 1, after=after)
    page = found[:limit]
    next_cursor = encode_cursor(page[-1]) if len(found) > limit else None
    return jsonify(calls=[call_json(c) for c in page], next_cursor=next_cursor), 200


@api.get("/stats")
def show_stats() -> Reply:
    """The dashboard's figures for the calls received from ``since`` (default: today, UTC)."""
    operators = operator_services()
    now = operators.clock()
    try:
        since = _time_arg("since") or now.replace(hour=0, minute=0, second=0, microsecond=0)
        until = _time_arg("until") or now
    except BadQuery as exc:
        return error(400, "bad_query", exc.message)
    if not timedelta(0) < until - since <= MAX_STATS_WINDOW:
        return error(400, "bad_query", "until must come after since, at most 31 days later.")
    return jsonify(stats_json(operators.stats(since=since, until=until))), 200


@api.get("/calls/<call_id>")
def show_call(call_id: str) -> Reply:
    """The whole timeline of one call."""
    store = operator_services().calls
    call = store.get_call(call_id)
    if call is None:
        return _unknown(call_id)
    body = timeline_json(call, store.events(call_id), store.transcript(call_id))
    if allowed(g.role, Permission.DELIVERIES):  # admins only
        body["deliveries"] = deliveries_json(operator_services().outbox.list(call_id=call_id))
    return jsonify(body), 200


@api.get("/calls/<call_id>/stream")
def stream_call(call_id: str) -> Response | Reply:
    """Server-Sent Events of the call's events as they are recorded (a capped number open)."""
    operators = operator_services()
    store = operators.calls
    if store.get_call(call_id) is None:
        return _unknown(call_id)
    after_id = event_id(request.headers.get("Last-Event-ID"))
    slot = operators.streams.take()
    if slot is None:
        return operators.streams.refusal()
    body = call_events_stream(
        store, call_id, after_id=after_id, timings=operators.stream, ending=slot.give
    )
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    response.call_on_close(slot.give)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@api.get("/audit")
def list_audit() -> Reply:
    """The audit trail (admins only), newest first, filtered, paginated with ``before``."""
    args = request.args
    try:
        limit = _limit_arg()
        before_id = _before_arg()
        where = AuditFilter(
            operator=args.get("operator") or None,
            call_id=args.get("call_id") or None,
            action=args.get("action") or None,
            result=args.get("result") or None,
            since=_time_arg("since"),
            until=_time_arg("until"),
        )
    except BadQuery as exc:
        return error(400, "bad_query", exc.message)
    rows = operator_services().store.audit(where, limit=limit + 1, before_id=before_id)
    page = rows[:limit]
    next_before = page[-1].id if len(rows) > limit else None
    return jsonify(entries=[audit_json(r) for r in page], next_before=next_before), 200


# -- acting ------------------------------------------------------------------------------------


@api.post("/calls/<call_id>/transfer")
def transfer_call(call_id: str) -> Reply:
    """Transfer a live call to a configured target (or a URI, where config allows it)."""
    return _act(call_id, "transfer")


@api.post("/calls/<call_id>/hangup")
def hangup_call(call_id: str) -> Reply:
    """Hang a live call up."""
    return _act(call_id, "hangup")


@api.post("/calls/<call_id>/instruct")
def instruct_call(call_id: str) -> Reply:
    """Give the agent a supervisor's instruction (a system item, then a new response)."""
    return _act(call_id, "instruct")


def _act(call_id: str, action: str) -> Reply:
    operator: str = g.operator
    body = json_body() if action != "hangup" else None
    outcome = operator_services().act(
        call_id, action, body, operator=operator, client=client_address(), await_transfer=True
    )
    if not outcome.ok:
        return error(outcome.status, outcome.code, outcome.message)
    answer = {"call_id": call_id, "action": action, "result": outcome.code, **outcome.detail}
    return jsonify({**answer, "operator": operator, "command_id": outcome.command_id}), (
        outcome.status
    )


# -- query parameters ----------------------------------------------------------------------------


def _limit_arg() -> int:
    value = request.args.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_LIMIT):
        raise BadQuery(LIMIT_MESSAGE)
    return int(value)


def _before_arg() -> int | None:
    value = request.args.get("before")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 19 and int(value) <= MAX_ID):
        raise BadQuery("before must be the id of an audit row (a positive integer).")
    return int(value)


def _cursor_arg() -> tuple[datetime, str] | None:
    value = request.args.get("cursor")
    if value is None:
        return None
    try:
        at, call_id = decode_cursor(value)
        return at.astimezone(UTC), call_id  # OverflowError near year 1 or 9999
    except (ValueError, OverflowError):
        raise BadQuery("cursor must be a next_cursor this API answered.") from None


def _time_arg(name: str) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    message = f"{name} must be an ISO 8601 time with a zone, e.g. 2026-01-31T09:00:00Z."
    try:
        parsed = datetime.fromisoformat(value)
        in_utc = parsed.astimezone(UTC)  # OverflowError near year 1 or 9999
    except (ValueError, OverflowError):
        raise BadQuery(message) from None
    if parsed.tzinfo is None:
        raise BadQuery(message)
    return in_utc


def _unknown(call_id: str) -> Reply:
    return error(404, "unknown_call", f"no call {call_id!r}")
