"""Who may do what: the roles of ``CALLCENTER_OPERATOR_TOKENS`` and one policy for every surface.

``viewer`` reads calls; ``operator`` also transfers, hangs up and instructs (the role of a
token listed without one); ``admin`` also reads the audit trail. The API, the console and
(through the API) the CLI all ask :func:`allowed`, so a role means the same everywhere. Pure.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["DEFAULT_ROLE", "Permission", "Role", "allowed", "refusal_message"]


class Role(StrEnum):
    """What an operator's token is trusted with."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Permission(StrEnum):
    """What a request asks to do."""

    READ = "read"  # list and read calls, follow their streams
    TRANSFER = "transfer"
    HANGUP = "hangup"
    INSTRUCT = "instruct"
    AUDIT = "audit"  # read the audit trail
    DELIVERIES = "deliveries"  # see a call's notification deliveries


DEFAULT_ROLE: Final = Role.OPERATOR

_GRANTS: Final[dict[Role, frozenset[Permission]]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset(
        {Permission.READ, Permission.TRANSFER, Permission.HANGUP, Permission.INSTRUCT}
    ),
    Role.ADMIN: frozenset(Permission),
}


def allowed(role: Role, permission: Permission) -> bool:
    """Whether ``role`` may do ``permission``."""
    return permission in _GRANTS[role]


def refusal_message(role: Role, permission: Permission) -> str:
    """The sentence a refusal answers with (403)."""
    if permission is Permission.AUDIT:
        return f"the {role} role may not read the audit trail; it needs admin"
    if permission is Permission.DELIVERIES:
        return f"the {role} role may not see notification deliveries; it needs admin"
    return f"the {role} role may not {permission} calls; it needs operator or admin"
