"""Who an operator is: bearer tokens from ``CALLCENTER_OPERATOR_TOKENS`` and a failure limiter.

``CALLCENTER_OPERATOR_TOKENS`` holds comma-separated ``name:token`` or ``name:token:role``
entries (roles in :mod:`callcenter.operators.roles`; no role means ``operator``). An entry is
split at every ``:``, so neither a name nor a token may contain one: two parts are a name and a
token, three a name, a token and a role, and anything else is a start-up error, as is a role
the server does not know (``ada:secret:viewr`` is refused, never read as a token). A presented token
is compared in constant time with every configured one (no early exit that would tell how
many tokens exist or which one came close). A client IP with too many failures in a window
is answered 429 with ``Retry-After`` until the window has passed; failures are counted in the
store (the ``login_failures`` table), so every worker and node sees the same count.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from callcenter.errors import ConfigError
from callcenter.operators.roles import DEFAULT_ROLE, Role
from callcenter.store.operators import OperatorStore

__all__ = [
    "FAILURE_WINDOW",
    "MAX_FAILURES",
    "FailureLimiter",
    "OperatorToken",
    "TokenChecker",
    "bearer_token",
    "parse_operator_tokens",
    "retry_after",
]

VARIABLE = "CALLCENTER_OPERATOR_TOKENS"
MAX_FAILURES = 20  # failed attempts from one client IP ...
FAILURE_WINDOW = timedelta(seconds=60)  # ... within this window, then 429 until it passes
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True, slots=True)
class OperatorToken:
    """One operator's name, bearer token (masked in repr) and role."""

    name: str
    token: str = field(repr=False)
    role: Role = DEFAULT_ROLE


def parse_operator_tokens(value: str) -> tuple[OperatorToken, ...]:
    """Parse ``name:token[:role],…``; ConfigError on a malformed or repeated entry."""
    tokens: list[OperatorToken] = []
    for index, part in enumerate(p.strip() for p in value.split(",")):
        if not part:
            continue
        tokens.append(_entry(part, f"{VARIABLE}[{index}]", tokens))
    return tuple(tokens)


def _entry(part: str, where: str, before: list[OperatorToken]) -> OperatorToken:
    fields = [f.strip() for f in part.split(":")]
    if len(fields) not in (2, 3) or not all(fields):
        raise ConfigError(
            "environment", where, "expected name:token or name:token:role (no ':' in a token)"
        )
    name, token = fields[0], fields[1]
    role = DEFAULT_ROLE
    if len(fields) == 3:
        known = ", ".join(Role)
        if fields[2] not in tuple(Role):
            raise ConfigError(
                "environment", where, f"unknown role {fields[2]!r} for {name!r} (roles: {known})"
            )
        role = Role(fields[2])
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            "environment", where, f"the token of {name!r} is shorter than {MIN_TOKEN_LENGTH}"
        )
    if any(t.name == name for t in before):
        raise ConfigError("environment", where, f"operator {name!r} is listed twice")
    return OperatorToken(name, token, role)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class TokenChecker:
    """Finds the operator a token belongs to, in constant time per configured token."""

    def __init__(self, tokens: tuple[OperatorToken, ...]) -> None:
        self._tokens = tokens

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (the operator API is off otherwise)."""
        return bool(self._tokens)

    def operator(self, presented: str) -> OperatorToken | None:
        """The operator ``presented`` belongs to, or None."""
        given = presented.encode()
        found: OperatorToken | None = None
        for entry in self._tokens:
            if hmac.compare_digest(given, entry.token.encode()):
                found = entry
        return found

    def role(self, name: str) -> Role | None:
        """The role of the operator called ``name`` today, or None if no longer listed."""
        return next((entry.role for entry in self._tokens if entry.name == name), None)


def retry_after(
    failures: int, oldest: datetime | None, now: datetime, *, max_failures: int, window: timedelta
) -> int | None:
    """Seconds to wait, given ``failures`` in the window since ``oldest``; None: may try now."""
    if failures < max_failures or oldest is None:
        return None
    return max(1, math.ceil((oldest + window - now).total_seconds()))


class FailureLimiter:
    """Counts failed logins per client in the store, so every worker and node shares them."""

    def __init__(
        self,
        store: OperatorStore,
        clock: Callable[[], datetime],
        max_failures: int = MAX_FAILURES,
        window: timedelta = FAILURE_WINDOW,
    ) -> None:
        self._store = store
        self._clock = clock
        self.max_failures = max_failures
        self._window = window

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before trying again, or None if it may try now."""
        now = self._clock()
        count, oldest = self._store.login_failures(client, since=now - self._window)
        return retry_after(count, oldest, now, max_failures=self.max_failures, window=self._window)

    def failed(self, client: str) -> None:
        """Count a failed attempt of ``client`` (and forget everyone's failures past the window)."""
        now = self._clock()
        self._store.add_login_failure(client, at=now, forget_before=now - self._window)
