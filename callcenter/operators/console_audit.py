"""The console's audit page at ``/console/audit``: who did what to which call, for admins.

Filters by operator, call, action, result (``refused`` matches every refusal) and dates,
newest first, a page at a time (``before``: the id the next page starts below). The same
rows as ``GET /api/v1/audit``; other roles get the 403 page, and their try is audited too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Final

from flask import Blueprint, abort, render_template, request

from callcenter.operators.console_access import forbidden, logged_in, may
from callcenter.operators.http import odd_request
from callcenter.operators.roles import Permission
from callcenter.operators.services import operator_services
from callcenter.operators.views import audit_json
from callcenter.store.operators import AuditFilter

__all__ = ["AUDIT_PAGE", "audit_page", "audit_filter"]

AUDIT_PAGE: Final = 50  # rows a page
FIELDS: Final = ("operator", "call_id", "action", "result")

audit_page = Blueprint("console_audit", __name__, url_prefix="/console/audit")


@audit_page.get("")
@logged_in
def audit() -> str | tuple[str, int]:
    """The audit trail, filtered and a page at a time."""
    odd = odd_request()
    if odd is not None:
        abort(odd.status, odd.message)
    if not may(Permission.AUDIT):
        return forbidden(Permission.AUDIT)
    args = request.args
    where, error = audit_filter({name: args.get(name, "") for name in (*FIELDS, "since", "until")})
    before = args.get("before", "")
    before_id = int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None
    rows = [] if error else _rows(where, before_id)
    page = rows[:AUDIT_PAGE]
    older = page[-1]["id"] if len(rows) > AUDIT_PAGE else None
    kept = {k: v for k, v in args.items() if k != "before" and v}
    return render_template(
        "console/audit.html", entries=page, error=error, args=args, kept=kept, older=older
    )


def audit_filter(form: dict[str, str]) -> tuple[AuditFilter, str | None]:
    """The filter of the page's form (dates as 2026-01-31, the end day included), or an error."""
    try:
        since = _day(form.get("since", ""))
        until = _day(form.get("until", ""))
    except ValueError:
        return AuditFilter(), "dates look like 2026-01-31"
    fields = {name: form.get(name, "").strip() or None for name in FIELDS}
    return AuditFilter(
        **fields, since=since, until=until + timedelta(days=1) if until else None
    ), None


def _day(value: str) -> datetime | None:
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def _rows(where: AuditFilter, before_id: int | None) -> list[dict[str, object]]:
    found = operator_services().store.audit(where, limit=AUDIT_PAGE + 1, before_id=before_id)
    rows = [audit_json(row) for row in found]
    for row in rows:  # as text for the page, which escapes it (tojson would show \u003c)
        row["detail_text"] = json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)
    return rows
