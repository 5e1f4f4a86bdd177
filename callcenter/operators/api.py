"""The operator API under ``/api/v1``: list and read calls, act on live ones, stream, audit.

Every route but the OpenAPI document needs ``Authorization: Bearer <token>`` (see
:mod:`callcenter.operators.auth`); every action is written to the audit trail. Commands reach
the worker holding the call through :mod:`callcenter.operators.commands`. Errors are JSON
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, cast

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, stream_with_context

from callcenter.call.actions import (
    OperatorCommand,
    OperatorHangup,
    OperatorInstruct,
    OperatorTransfer,
)
from callcenter.operators.actions import (
    Outcome,
    audit_outcome,
    check_instruction,
    check_transfer_target,
    execute,
)
from callcenter.operators.audit import AuditTrail
from callcenter.operators.auth import FailureLimiter, TokenChecker, bearer_token
from callcenter.operators.commands import CommandPoller, describe_command
from callcenter.operators.openapi import STATUSES, openapi_document
from callcenter.operators.stream import StreamTimings, call_events_stream
from callcenter.operators.views import (
    audit_json,
    call_json,
    decode_cursor,
    encode_cursor,
    timeline_json,
)
from callcenter.store.operators import CallFilter, OperatorStore

if TYPE_CHECKING:
    from callcenter.web.app import Services

__all__ = ["OPERATORS", "OperatorServices", "api", "install_operator_api", "operator_services"]

logger = logging.getLogger(__name__)

OPERATORS = "callcenter.operators"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
LOOPBACK = frozenset({"127.0.0.1", "::1"})  # a proxy here (nginx) passes X-Real-IP
PUBLIC_ENDPOINTS = frozenset({"operator_api.openapi_json"})

api = Blueprint("operator_api", __name__, url_prefix="/api/v1")

Reply = tuple[Response, int]


class OperatorServices:
    """What the operator API needs besides the app's services (one per worker)."""

    def __init__(
        self,
        *,
        services: Services,
        clock: Callable[[], datetime],
        owner: str,
        command_wait: float = 5.0,
        stream: StreamTimings | None = None,
    ) -> None:
        self.calls = services.store
        self.runtime = services.runtime
        self.config = services.config
        self.store = OperatorStore(services.store)
        self.tokens = TokenChecker(services.settings.operator_tokens)
        self.limiter = FailureLimiter()
        self.audit = AuditTrail(self.store, clock)
        self.clock = clock
        self.command_wait = command_wait
        self.stream = stream or StreamTimings()
        self.poller = CommandPoller(services.runtime, self.store, owner=owner, clock=clock)

    def execute(self, call_id: str, command: OperatorCommand, client: str) -> Outcome:
        """Check, deliver and audit an operator's command."""
        return execute(
            calls=self.calls,
            runtime=self.runtime,
            store=self.store,
            audit=self.audit,
            clock=self.clock,
            call_id=call_id,
            command=command,
            client=client,
            wait=self.command_wait,
        )


def install_operator_api(
    app: Flask, found: Services, *, clock: Callable[[], datetime], owner: str
) -> OperatorServices:
    """Register the API on ``app`` and start this worker's command poller."""
    operators = OperatorServices(services=found, clock=clock, owner=owner)
    app.extensions[OPERATORS] = operators
    app.register_blueprint(api)
    operators.poller.start()
    found.on_close.append(operators.poller.stop)
    return operators


def operator_services() -> OperatorServices:
    """The operator services of the current app."""
    return cast(OperatorServices, current_app.extensions[OPERATORS])


def error(status: int, code: str, message: str) -> Reply:
    """A JSON error reply."""
    return jsonify(error={"code": code, "message": message}), status


def client_address() -> str:
    """The client's IP address: a local proxy's ``X-Real-IP``, or the peer's address."""
    peer = request.remote_addr or "unknown"
    real = request.headers.get("X-Real-IP", "").strip()
    return real if real and peer in LOOPBACK else peer


@api.before_request
def authenticate() -> Reply | None:
    """Refuse requests without a valid bearer token (and slow down repeated failures)."""
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
    name = operators.tokens.operator(token) if token is not None else None
    if name is None:
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
    g.operator = name
    return None


# -- reading -----------------------------------------------------------------------------------


@api.get("/openapi.json")
def openapi_json() -> Reply:
    """The OpenAPI 3.1 document of this API (no token needed)."""
    return jsonify(openapi_document()), 200


@api.get("/calls")
def list_calls() -> Reply:
    """Calls, newest first, filtered and paginated with ``limit`` and ``cursor``."""
    args = request.args
    status = args.get("status")
    if status is not None and status not in STATUSES:
        return error(400, "bad_status", f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(args.get("limit", DEFAULT_LIMIT))
        since = _time_arg("since")
        until = _time_arg("until")
        cursor = args.get("cursor")
        after = decode_cursor(cursor) if cursor is not None else None
    except ValueError as exc:
        return error(400, "bad_query", str(exc))
    if not 1 <= limit <= MAX_LIMIT:
        return error(400, "bad_query", f"limit must be between 1 and {MAX_LIMIT}")
    where = CallFilter(
        status=status,
        route=args.get("route") or None,
        number=args.get("number") or None,
        since=since,
        until=until,
    )
    found = operator_services().store.search_calls(where, limit=limit + 1, after=after)
    page = found[:limit]
    next_cursor = encode_cursor(page[-1]) if len(found) > limit else None
    return jsonify(calls=[call_json(c) for c in page], next_cursor=next_cursor), 200


@api.get("/calls/<call_id>")
def show_call(call_id: str) -> Reply:
    """The whole timeline of one call."""
    store = operator_services().calls
    call = store.get_call(call_id)
    if call is None:
        return _unknown(call_id)
    body = timeline_json(call, store.events(call_id), store.transcript(call_id))
    return jsonify(body), 200


@api.get("/calls/<call_id>/stream")
def stream_call(call_id: str) -> Response | Reply:
    """Server-Sent Events of the call's events as they are recorded."""
    store = operator_services().calls
    if store.get_call(call_id) is None:
        return _unknown(call_id)
    last = request.headers.get("Last-Event-ID", "0")
    after_id = int(last) if last.isdigit() else 0
    timings = operator_services().stream
    body = call_events_stream(store, call_id, after_id=after_id, timings=timings)
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@api.get("/audit")
def list_audit() -> Reply:
    """The audit trail, newest first, paginated with ``limit`` and ``before`` (an id)."""
    try:
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
        before = request.args.get("before")
        before_id = int(before) if before is not None else None
    except ValueError:
        return error(400, "bad_query", "limit and before must be integers")
    if not 1 <= limit <= MAX_LIMIT:
        return error(400, "bad_query", f"limit must be between 1 and {MAX_LIMIT}")
    rows = operator_services().store.audit(limit=limit + 1, before_id=before_id)
    page = rows[:limit]
    next_before = page[-1].id if len(rows) > limit else None
    return jsonify(entries=[audit_json(r) for r in page], next_before=next_before), 200


# -- acting ------------------------------------------------------------------------------------


@api.post("/calls/<call_id>/transfer")
def transfer_call(call_id: str) -> Reply:
    """Transfer a live call to a configured target (or a URI, where config allows it)."""
    body = _body()
    if isinstance(body, Outcome):
        return _refused("transfer", call_id, body)
    target = body.get("target")
    refused = check_transfer_target(operator_services().config, target)
    if refused is not None:
        return _refused("transfer", call_id, refused)
    return _act(call_id, OperatorTransfer(str(target).strip(), g.operator))


@api.post("/calls/<call_id>/hangup")
def hangup_call(call_id: str) -> Reply:
    """Hang a live call up."""
    return _act(call_id, OperatorHangup(g.operator))


@api.post("/calls/<call_id>/instruct")
def instruct_call(call_id: str) -> Reply:
    """Give the agent a supervisor's instruction (a system item, then a new response)."""
    body = _body()
    if isinstance(body, Outcome):
        return _refused("instruct", call_id, body)
    text = body.get("text")
    refused = check_instruction(text)
    if refused is not None:
        return _refused("instruct", call_id, refused)
    return _act(call_id, OperatorInstruct(str(text).strip(), g.operator))


def _act(call_id: str, command: OperatorCommand) -> Reply:
    operators = operator_services()
    outcome = operators.execute(call_id, command, client_address())
    if not outcome.ok:
        return error(outcome.status, outcome.code, outcome.message)
    kind, _ = describe_command(command)
    body = {"call_id": call_id, "action": kind, "result": outcome.code}
    return jsonify({**body, "operator": command.operator, "command_id": outcome.command_id}), (
        outcome.status
    )


def _refused(action: str, call_id: str, outcome: Outcome) -> Reply:
    operators = operator_services()
    audit_outcome(operators.audit, g.operator, action, call_id, client_address(), outcome)
    return error(outcome.status, outcome.code, outcome.message)


def _body() -> dict[str, object] | Outcome:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return Outcome(400, "bad_request", "the body must be a JSON object")
    return cast(dict[str, object], body)


def _time_arg(name: str) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{name} needs a time zone, e.g. 2025-01-31T09:00:00Z")
    return parsed


def _unknown(call_id: str) -> Reply:
    return error(404, "unknown_call", f"no call {call_id!r}")
