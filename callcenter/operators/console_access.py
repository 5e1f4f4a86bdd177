"""Who is logged in to the console, and what their role lets them see and do.

The session carries the operator's name only; the role is looked up in the configured tokens
on every request, so a changed role applies at once and an operator no longer listed is sent
back to the login page. A refusal is the HTML 403 page, and a row of the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from callcenter.operators.http import client_address
from callcenter.operators.roles import Permission, Role, allowed, refusal_message
from callcenter.operators.services import operator_services

__all__ = ["access_context", "current_role", "forbidden", "logged_in", "may"]

P = ParamSpec("P")
R = TypeVar("R")


def current_role() -> Role | None:
    """The role of the session's operator, or None without a session (or a listed operator)."""
    name = session.get("operator")
    return operator_services().tokens.role(str(name)) if name else None


def logged_in(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    """Send visitors without a session (or whose operator is no longer listed) to log in."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if current_role() is None:
            session.pop("operator", None)
            return redirect(url_for("console.login"))
        return view(*args, **kwargs)

    return wrapper


def forbidden(permission: Permission, call_id: str | None = None) -> tuple[str, int]:
    """The 403 page for the session's operator, audited."""
    role = current_role() or Role.VIEWER
    operator_services().audit.record(
        operator=str(session.get("operator")),
        action=permission.value,
        call_id=call_id,
        result="refused:403:forbidden",
        client=client_address(),
        detail={"path": request.path, "role": role.value},
    )
    message = refusal_message(role, permission)
    return render_template("console/forbidden.html", message=message), 403


def may(permission: Permission) -> bool:
    """Whether the session's operator may do ``permission``."""
    role = current_role()
    return role is not None and allowed(role, permission)


def access_context() -> dict[str, object]:
    """What templates know of the role: ``role``, and ``may("transfer")`` and the like."""
    role = current_role()
    return {"role": role.value if role else None, "may": lambda name: may(Permission(name))}
