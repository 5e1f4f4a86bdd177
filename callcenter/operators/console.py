"""The operators' web console at ``/console``: dashboard and live calls, a call, history.

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
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
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

from callcenter.call.latency import latency_summary
from callcenter.call.vocabulary import LIVE_STATUSES
from callcenter.operators.console_access import access_context, forbidden, logged_in, may
from callcenter.operators.console_audit import audit_page
from callcenter.operators.console_format import (
    OUTCOME_WORDS,
    day_start,
    duration,
    local_time,
    offset,
    outcome_words,
    zone_named,
)
from callcenter.operators.console_view import CHART, dashboard_view, timeline_entries
from callcenter.operators.filters import OUTCOMES, STATUSES, FilterError, call_filter
from callcenter.operators.http import client_address, event_id, odd_request
from callcenter.operators.parsing import ACTIONS
from callcenter.operators.roles import Permission
from callcenter.operators.services import OperatorServices, operator_services
from callcenter.operators.stream import StreamSlot, call_events_stream
from callcenter.operators.transfers import transfer_attempts
from callcenter.operators.views import call_json, decode_cursor, deliveries_json, encode_cursor
from callcenter.settings import Settings
from callcenter.simulation.text import latency_lines
from callcenter.store import CallRecord
from callcenter.store.operators import CallFilter

__all__ = ["SECRET_FILE", "console", "install_console", "load_secret_key"]

logger = logging.getLogger(__name__)

SECRET_FILE = "console-secret"
HISTORY_PAGE = 50
CSV_LIMIT = 10_000
LIVE_EVERY = 1.0  # seconds between two looks at the live calls
STATS_EVERY = 5  # looks at the live calls between two at the day's figures
ZONE_COOKIE = "tz"  # the operator's time zone, as the browser names it

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
    return redirect(url_for("console.dashboard"))


@console.post("/logout")
def logout() -> BaseResponse:
    """End the session."""
    session.clear()
    return redirect(url_for("console.login"))


# -- pages ------------------------------------------------------------------------------------


@console.app_context_processor
def formatting() -> dict[str, object]:
    """Every template gets the operator's time zone and the console's formatters."""
    return {
        "zone": _zone(),
        "local_time": local_time,
        "offset": offset,
        "duration": duration,
        "outcome_words": outcome_words,
    }


@console.get("")
@console.get("/")
@logged_in
def dashboard() -> str:
    """The console's home: the day's figures and the live calls, updated as they change."""
    operators = operator_services()
    return render_template(
        "console/dashboard.html",
        calls=_live_calls(operators),
        view=_dashboard_view(operators, _zone()),
        chart=CHART,
    )


@console.get("/live")
@logged_in
def live_stream() -> Response:
    """SSE: the live calls and the day's figures, sent again whenever they change."""
    operators = operator_services()
    zone = _zone()
    slot = operators.streams.take()
    if slot is None:
        abort(operators.streams.refusal())

    def frames() -> Iterator[str]:
        last: dict[str, str] = {}
        started = time.monotonic()
        tick = 0
        while time.monotonic() - started < operators.stream.lifetime:
            sent = False
            due: dict[str, Callable[[], object]] = {"calls": lambda: _live_calls(operators)}
            if tick % STATS_EVERY == 0:
                due["stats"] = lambda: _dashboard_view(operators, zone, shared=True)
            for event, build in due.items():
                data = json.dumps(build())
                if data != last.get(event):
                    last[event] = data
                    sent = True
                    yield f"event: {event}\ndata: {data}\n\n"
            if not sent:
                yield ": heartbeat\n\n"
            tick += 1
            time.sleep(LIVE_EVERY)

    return _event_stream(frames(), slot)


@console.get("/calls/<call_id>")
@logged_in
def call_page(call_id: str) -> str:
    """One call as a timeline, with its details and, while it is live, the action buttons."""
    operators = operator_services()
    record = operators.calls.get_call(call_id)
    if record is None:
        abort(404, f"No call {call_id}.")
    events = operators.calls.events(call_id)
    transcript = operators.calls.transcript(call_id)
    return render_template(
        "console/call.html",
        call=record,
        entries=timeline_entries(record, events, transcript),
        transfers=[
            {**attempt, "ended_at": datetime.fromisoformat(str(attempt["ended_at"]))}
            for attempt in transfer_attempts(events)
        ],
        latency=latency_lines(latency_summary(record.latency)),
        deliveries=deliveries_json(operators.outbox.list(call_id=call_id))
        if may(Permission.DELIVERIES)
        else None,
        after=events[-1].id if events else 0,
        live=record.status in LIVE_STATUSES,
        outcome_words_all={str(outcome): words for outcome, words in OUTCOME_WORDS.items()},
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
    slot = operators.streams.take()
    if slot is None:
        abort(operators.streams.refusal())
    body = call_events_stream(
        operators.calls, call_id, after_id=after_id, timings=operators.stream, ending=slot.give
    )
    return _event_stream(body, slot)


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
def history() -> Page:
    """Past and present calls: filtered, searched in their transcripts, a page at a time."""
    operators = operator_services()
    args = {key: value for key, value in request.args.items() if value}
    try:
        where = _history_filter()
        after = decode_cursor(args["cursor"]) if "cursor" in args else None
    except (FilterError, ValueError) as exc:
        error = str(exc) if isinstance(exc, FilterError) else "That page link is stale."
        return _history_page(operators, args, [], None, error), 400
    found = operators.store.search_calls(where, limit=HISTORY_PAGE + 1, after=after)
    page = found[:HISTORY_PAGE]
    more = encode_cursor(page[-1]) if len(found) > HISTORY_PAGE else None
    return _history_page(operators, args, page, more, None)


@console.get("/history.csv")
@logged_in
def history_csv() -> Response:
    """The history search as CSV (up to CSV_LIMIT calls), times in UTC."""
    try:
        where = _history_filter()
    except FilterError as exc:
        abort(400, str(exc))
    rows = [call_json(c) for c in operator_services().store.search_calls(where, limit=CSV_LIMIT)]
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


def _zone() -> tzinfo:
    return zone_named(request.cookies.get(ZONE_COOKIE))


def _dashboard_view(
    operators: OperatorServices, zone: tzinfo, *, shared: bool = False
) -> dict[str, object]:
    """Today's figures in ``zone``; ``shared``: as another stream of this worker just read
    them (a few seconds old at most), for the live refresh."""
    now = operators.clock()
    since = day_start(now, zone)
    until = day_start(since + timedelta(hours=36), zone)  # the next midnight, DST or not
    figures = operators.shared_stats if shared else operators.stats
    return dashboard_view(figures(since=since, until=until), zone)


def _live_calls(operators: OperatorServices) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for status in LIVE_STATUSES:
        for record in operators.store.search_calls(CallFilter(status=status), limit=200):
            row = call_json(record)
            started = record.answered_at or record.received_at
            row["duration"] = duration(now - started)
            lines = operators.calls.transcript(record.call_id)
            row["last_line"] = str(lines[-1].data.get("text") or "") if lines else ""
            rows.append(row)
    return rows


def _history_filter() -> CallFilter:
    args = request.args
    zone = _zone()
    try:
        since = _day(args.get("since"), zone)
        until = _day(args.get("until"), zone)
    except ValueError:
        raise FilterError("Dates look like 2026-01-31.") from None
    until = day_start(until + timedelta(hours=36), zone) if until else None
    return call_filter(args, since=since, until=until)


def _day(value: str | None, zone: tzinfo) -> datetime | None:
    """Midnight of a ``2026-01-31`` day in ``zone``, in UTC."""
    if not value:
        return None
    day = date.fromisoformat(value)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _history_page(
    operators: OperatorServices,
    args: dict[str, str],
    calls: list[CallRecord],
    more: str | None,
    error: str | None,
) -> str:
    filters = {key: value for key, value in args.items() if key != "cursor"}
    return render_template(
        "console/history.html",
        calls=calls,
        error=error,
        args=filters,
        more=more,
        paged="cursor" in args,
        outcomes=OUTCOMES,
        statuses=STATUSES,
        routes=[route.name for route in operators.config.routes],
    )


def _csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text[1:2].isdigit() else text


def _event_stream(body: Iterator[str], slot: StreamSlot) -> Response:
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    response.call_on_close(slot.give)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
