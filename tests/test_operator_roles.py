"""The role policy: one table of role × permission, the same for every surface."""

from __future__ import annotations

import pytest

from callcenter.operators.roles import Permission, Role, allowed, refusal_message


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        (Role.VIEWER, {Permission.READ}),
        (Role.OPERATOR, {Permission.READ, Permission.TRANSFER, Permission.HANGUP,
                         Permission.INSTRUCT}),
        (Role.ADMIN, set(Permission)),
    ],
)  # fmt: skip
def test_each_role_is_granted_exactly_its_permissions(role: Role, granted: set[Permission]) -> None:
    """viewer reads; operator also acts on calls; admin also reads the audit trail."""
    assert {p for p in Permission if allowed(role, p)} == granted


def test_a_refusal_names_the_role_and_what_it_lacks() -> None:
    """The 403 sentence says which role was refused what, and which role would do."""
    assert refusal_message(Role.VIEWER, Permission.HANGUP) == (
        "the viewer role may not hangup calls; it needs operator or admin"
    )
    assert "needs admin" in refusal_message(Role.OPERATOR, Permission.AUDIT)
