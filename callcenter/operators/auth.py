"""Who an operator is: bearer tokens from ``CALLCENTER_OPERATOR_TOKENS`` and a failure limiter.

``CALLCENTER_OPERATOR_TOKENS`` holds comma-separated ``name:token`` pairs. A presented token
is compared in constant time with every configured one (no early exit that would tell how
many tokens exist or which one came close). A client IP with too many failures in a window
is answered 429 with ``Retry-After`` until the window has passed.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from callcenter.errors import ConfigError

__all__ = [
    "FAILURE_WINDOW",
    "MAX_FAILURES",
    "FailureLimiter",
    "OperatorToken",
    "TokenChecker",
    "bearer_token",
    "parse_operator_tokens",
]

VARIABLE = "CALLCENTER_OPERATOR_TOKENS"
MAX_FAILURES = 20  # failed attempts from one client IP ...
FAILURE_WINDOW = 60.0  # ... within this many seconds, then 429 until the window passes
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True, slots=True)
class OperatorToken:
    """One operator's name and bearer token (masked in repr)."""

    name: str
    token: str = field(repr=False)


def parse_operator_tokens(value: str) -> tuple[OperatorToken, ...]:
    """Parse ``name:token,name:token``; ConfigError on a malformed or repeated entry."""
    tokens: list[OperatorToken] = []
    for index, part in enumerate(p.strip() for p in value.split(",")):
        if not part:
            continue
        name, sep, token = part.partition(":")
        name, token = name.strip(), token.strip()
        where = f"{VARIABLE}[{index}]"
        if not sep or not name or not token:
            raise ConfigError("environment", where, "expected name:token")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                "environment", where, f"the token of {name!r} is shorter than {MIN_TOKEN_LENGTH}"
            )
        if any(t.name == name for t in tokens):
            raise ConfigError("environment", where, f"operator {name!r} is listed twice")
        tokens.append(OperatorToken(name, token))
    return tuple(tokens)


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

    def operator(self, presented: str) -> str | None:
        """The operator's name for ``presented``, or None."""
        given = presented.encode()
        found: str | None = None
        for entry in self._tokens:
            if hmac.compare_digest(given, entry.token.encode()):
                found = entry.name
        return found


class FailureLimiter:
    """Counts failed logins per client; thread-safe, in-process (one per worker)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before trying again, or None if it may try now."""
        now = self._clock()
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self._max:
                return None
            return max(1, int(failures[0] + self._window - now + 0.999))

    def failed(self, client: str) -> None:
        """Count a failed attempt of ``client``."""
        now = self._clock()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # forget quiet clients
                for quiet in [c for c, f in self._failures.items() if not f]:
                    del self._failures[quiet]

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures
