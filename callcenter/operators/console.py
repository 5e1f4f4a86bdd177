"""The operators' web console at ``/console``: live calls, a call's page, history.

Server-rendered Jinja pages (autoescaped: SIP header values and transcripts are untrusted)
with a little JavaScript fed by Server-Sent Events. An operator logs in with their token
once; a signed session cookie (``CALLCENTER_SECRET_KEY``, or a key generated once and kept
0600 in the data directory) carries who they are, and every POST carries the session's CSRF
token. Actions go through :meth:`~callcenter.operators.services.OperatorServices.act`, the
API's own parser, checks and audit trail; streams take a slot of the worker's stream cap.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from callcenter.call.vocabulary import LIVE_STATUSES
from callcenter.operators.console_access import access_context, forbidden, logged_in, may
from callcenter.operators.console_audit import audit_page
from callcenter.operators.http import client_address, event_id, odd_request
from callcenter.operators.openapi import STATUSES
from callcenter.operators.parsing import ACTIONS
from callcenter.operators.roles import Permission
from callcenter.operators.services import OperatorServices, operator_services
from callcenter.operators.stream import call_events_stream
from callcenter.operators.views import call_json, timeline_json
from callcenter.settings import Settings
from callcenter.store.operators import CallFilter

__all__ = ["SECRET_FILE", "console", "install_console", "load_secret_key"]

logger = logging.getLogger(__name__)

SECRET_FILE = "console-secret"
HISTORY_LIMIT = 200
LIVE_EVERY = 1.0  # seconds between two looks at the live calls

console = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)

Page = str | BaseResponse | tuple[str, int]


def load_secret_key(settings: Settings) -> str:
    """The console's signing key: from the settings, or generated once in the data dir."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(48))
    logger.info("console secret key generated", extra={"path": str(path)})
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    deadline = time.monotonic() + 2.0
    while True:  # another worker may be writing it right now
        key = path.read_text().strip()
        if key or time.monotonic() > deadline:
            return key
        time.sleep(0.01)


def install_console(app: Flask, settings: Settings) -> None:
    """Register the console on ``app`` with its signed session cookie."""
    app.secret_key = load_secret_key(settings)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="callcenter_console",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.register_blueprint(console)
    app.register_blueprint(audit_page)


@console.before_request
def check_request() -> None:
    """Refuse odd URLs, and a POST whose CSRF token is not the session's."""
    odd = odd_request()
    if odd is not None:
        abort(odd.status, odd.message)
    if request.method != "POST":
        return
    expected = session.get("csrf")
    given = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(str(expected), given):
        abort(400, "The form's CSRF token is missing or stale; reload the page.")


@console.app_context_processor
def csrf_token() -> dict[str, object]:
    """Every template gets ``csrf`` (created with the session)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return {"csrf": str(session["csrf"]), **access_context()}


# -- login ------------------------------------------------------------------------------------


@console.route("/login", methods=["GET", "POST"])
def login() -> Page:
    """The login form; a right token opens a session."""
    operators = operator_services()
    if request.method == "GET":
        return render_template("console/login.html", enabled=operators.tokens.enabled)
    client = client_address()
    wait = operators.limiter.retry_after(client)
    if wait is not None:
        flash(f"Too many failed logins; try again in {wait} seconds.")
        return render_template("console/login.html", enabled=True), 429
    found = operators.tokens.operator(request.form.get("token", ""))
    if found is None:
        operators.limiter.failed(client)
        operators.audit.record(
            operator=None, action="login", call_id=None, result="wrong_token", client=client
        )
        flash("That token is not valid.")
        return render_template("console/login.html", enabled=operators.tokens.enabled), 401
    session.clear()
    session.permanent = True
    session["operator"] = found.name
    session["csrf"] = secrets.token_urlsafe(32)
    operators.audit.record(
        operator=found.name,
        action="console_login",
        call_id=None,
        result="ok",
        client=client,
        detail={"role": found.role.value},
    )
    return redirect(url_for("console.live"))


@console.post("/logout")
def logout() -> BaseResponse:
    """End the session."""
    session.clear()
    return redirect(url_for("console.login"))


# -- pages ------------------------------------------------------------------------------------


@console.get("")
@console.get("/")
@logged_in
def live() -> str:
    """The live calls, updated as they change."""
    return render_template("console/live.html", calls=_live_calls(operator_services()))


@console.get("/live")
@logged_in
def live_stream() -> Response:
    """SSE: the live calls, sent again whenever they change."""
    operators = operator_services()
    if not operators.streams.take():
        abort(operators.streams.refusal())

    def frames() -> Iterator[str]:
        last = None
        started = time.monotonic()
        while time.monotonic() - started < operators.stream.lifetime:
            rows = json.dumps(_live_calls(operators))
            if rows != last:
                last = rows
                yield f"event: calls\ndata: {rows}\n\n"
            else:
                yield ": heartbeat\n\n"
            time.sleep(LIVE_EVERY)

    return _event_stream(frames(), operators)


@console.get("/calls/<call_id>")
@logged_in
def call_page(call_id: str) -> str:
    """One call: its details, live transcript, tools, escalations and the action buttons."""
    operators = operator_services()
    record = operators.calls.get_call(call_id)
    if record is None:
        abort(404, f"No call {call_id}.")
    events = operators.calls.events(call_id)
    timeline = timeline_json(record, events, operators.calls.transcript(call_id))
    return render_template(
        "console/call.html",
        call=timeline,
        after=events[-1].id if events else 0,
        live=record.status in LIVE_STATUSES,
        targets=list(operators.config.targets),
        allow_uris=operators.config.operators.allow_uri_targets,
    )


@console.get("/calls/<call_id>/events")
@logged_in
def call_events(call_id: str) -> Response:
    """SSE: the call's events after ``?after=`` (or ``Last-Event-ID``), as they are recorded."""
    operators = operator_services()
    if operators.calls.get_call(call_id) is None:
        abort(404, f"No call {call_id}.")
    after_id = max(
        event_id(request.args.get("after")), event_id(request.headers.get("Last-Event-ID"))
    )
    if not operators.streams.take():
        abort(operators.streams.refusal())
    body = call_events_stream(operators.calls, call_id, after_id=after_id, timings=operators.stream)
    return _event_stream(body, operators)


@console.post("/calls/<call_id>/<action>")
@logged_in
def act(call_id: str, action: str) -> BaseResponse | tuple[str, int]:
    """Transfer, hang up or instruct, from the call page's forms (refusals audited)."""
    if action not in ACTIONS:
        abort(404)
    if not may(Permission(action)):
        return forbidden(Permission(action), call_id)
    form = request.form
    fields = {
        "target": form.get("uri", "").strip() or form.get("target", ""),
        "text": form.get("text", ""),
    }
    outcome = operator_services().act(
        call_id, action, fields, operator=str(session["operator"]), client=client_address()
    )
    flash(f"{action}: {outcome.message}" if outcome.ok else f"{action} refused: {outcome.message}")
    return redirect(url_for("console.call_page", call_id=call_id))


@console.get("/history")
@logged_in
def history() -> str:
    """Past and present calls, searchable by number, route, status and time."""
    where, error = _history_filter()
    found = [] if error else _search(operator_services(), where)
    return render_template("console/history.html", calls=found, error=error, args=request.args)


@console.get("/history.csv")
@logged_in
def history_csv() -> Response:
    """The history search as CSV."""
    where, error = _history_filter()
    if error:
        abort(400, error)
    rows = _search(operator_services(), where)
    out = io.StringIO()
    columns = ["call_id", "status", "route", "caller_number", "caller_name", "dialled_number",
               "outcome", "ticket", "received_at", "ended_at"]  # fmt: skip
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_safe(row.get(k)) for k in columns})
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=calls.csv"
    return response


# -- helpers ----------------------------------------------------------------------------------


def _live_calls(operators: OperatorServices) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for status in LIVE_STATUSES:
        for record in operators.store.search_calls(CallFilter(status=status), limit=200):
            row = call_json(record)
            started = record.answered_at or record.received_at
            row["duration"] = int((now - started).total_seconds())
            lines = operators.calls.transcript(record.call_id)
            row["last_line"] = str(lines[-1].data.get("text") or "") if lines else ""
            rows.append(row)
    return rows


def _history_filter() -> tuple[CallFilter, str | None]:
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        return CallFilter(), f"status must be one of {', '.join(STATUSES)}"
    try:
        since = _day(args.get("since"))
        until = _day(args.get("until"))
    except ValueError:
        return CallFilter(), "dates look like 2026-01-31"
    until = until + timedelta(days=1) if until else None
    number = args.get("q") or None
    where = CallFilter(status=status, route=args.get("route") or None, number=number)
    return CallFilter(where.status, where.route, where.number, since, until), None


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _search(operators: OperatorServices, where: CallFilter) -> list[dict[str, object]]:
    return [call_json(c) for c in operators.store.search_calls(where, limit=HISTORY_LIMIT)]


def _csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text[1:2].isdigit() else text


def _event_stream(body: Iterator[str], operators: OperatorServices) -> Response:
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    response.call_on_close(operators.streams.give)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
