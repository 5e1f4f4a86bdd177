"""Operator tokens and the failed-login limiter: pure functions, and the count in the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.errors import ConfigError
from callcenter.operators.auth import (
    FailureLimiter,
    OperatorToken,
    TokenChecker,
    bearer_token,
    parse_operator_tokens,
    retry_after,
)
from callcenter.operators.roles import Role
from callcenter.settings import Settings
from callcenter.store import Store
from callcenter.store.operators import OperatorStore

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

ADA = "ada-0123456789abcdef"


def test_tokens_are_parsed_from_name_token_pairs() -> None:
    """Comma-separated name:token pairs, spaces and empty entries ignored."""
    tokens = parse_operator_tokens(f" ada:{ADA} ,, bob:{ADA[::-1]} ")
    assert [t.name for t in tokens] == ["ada", "bob"]


def test_a_role_follows_the_token_and_operator_is_the_default() -> None:
    """name:token is an operator; name:token:role has that role."""
    tokens = parse_operator_tokens(f"ada:{ADA}:admin, bob:{ADA[::-1]}, vera:{ADA}v:viewer")
    assert [(t.name, t.role) for t in tokens] == [
        ("ada", Role.ADMIN),
        ("bob", Role.OPERATOR),
        ("vera", Role.VIEWER),
    ]


def test_an_unknown_role_is_a_start_up_error_naming_it() -> None:
    """A role the server does not know is refused with its name, never read as a token."""
    env = {
        "CALLCENTER_CONFIG": "x.toml",
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_WEBHOOK_SECRET": "whsec_dGVzdA==",
        "CALLCENTER_OPERATOR_TOKENS": f"ada:{ADA}:superuser",
    }
    expected = r"CALLCENTER_OPERATOR_TOKENS\[0\]: unknown role 'superuser'"
    with pytest.raises(ConfigError, match=expected):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "value",
    ["ada", f":{ADA}", "ada:", "ada:short", f"ada:{ADA},ada:{ADA}x", f"ada:{ADA}:",
     f"ada:{ADA}:x:admin"],
)  # fmt: skip
def test_bad_token_lists_are_config_errors(value: str) -> None:
    """No colon, no name, no token, a short token, a repeated name, an empty role or a token
    with a colon in it: ConfigError."""
    with pytest.raises(ConfigError, match="CALLCENTER_OPERATOR_TOKENS"):
        parse_operator_tokens(value)


def test_tokens_are_masked_in_settings_repr() -> None:
    """Neither a token nor the console's secret key shows in repr."""
    env = {
        "CALLCENTER_CONFIG": "x.toml",
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_WEBHOOK_SECRET": "whsec_dGVzdA==",
        "CALLCENTER_OPERATOR_TOKENS": f"ada:{ADA}",
        "CALLCENTER_SECRET_KEY": "very-secret-key",
    }
    settings = Settings.from_env(env)
    assert settings.operator_tokens == (OperatorToken("ada", ADA),)
    assert ADA not in repr(settings)
    assert "very-secret-key" not in repr(settings)


def test_the_checker_names_the_operator_of_a_token() -> None:
    """A configured token gives its operator; anything else gives None."""
    checker = TokenChecker(parse_operator_tokens(f"ada:{ADA}"))
    assert checker.operator(ADA) == OperatorToken("ada", ADA, Role.OPERATOR)
    assert checker.role("ada") is Role.OPERATOR
    assert checker.role("bob") is None
    assert checker.operator(ADA + "x") is None
    assert checker.operator("") is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
     (None, None)],
)  # fmt: skip
def test_bearer_tokens_are_read_from_the_header(header: str | None, token: str | None) -> None:
    """Only the Bearer scheme carries a token."""
    assert bearer_token(header) == token


def test_the_limiter_blocks_after_max_failures_until_the_window_passes() -> None:
    """Three failures in 60 s block the client until the oldest leaves the window."""
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    window = timedelta(seconds=60)
    oldest = now - timedelta(seconds=30)
    assert retry_after(2, oldest, now, max_failures=3, window=window) is None
    assert retry_after(3, oldest, now, max_failures=3, window=window) == 30
    assert retry_after(3, now - timedelta(seconds=59.5), now, max_failures=3, window=window) == 1
    assert retry_after(0, None, now, max_failures=3, window=window) is None


def test_failures_are_counted_in_the_store_per_client_and_window(store: Store) -> None:
    """Failures of one client in the store block it for the window; others stay free."""
    now = [datetime(2026, 12, 2, 9, 0, tzinfo=UTC)]
    limiter = FailureLimiter(OperatorStore(store), lambda: now[0], max_failures=3)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.failed("10.0.0.1")
        now[0] += timedelta(seconds=10)
    assert limiter.retry_after("10.0.0.1") == 30
    assert limiter.retry_after("10.0.0.2") is None
    now[0] += timedelta(seconds=30)
    assert limiter.retry_after("10.0.0.1") is None


def test_a_second_limiter_on_the_same_store_sees_the_failures(store: Store) -> None:
    """Two workers' limiters on one database share the count: 2 failures here + 1 there = 3."""
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    here = FailureLimiter(OperatorStore(store), lambda: now, max_failures=3)
    there = FailureLimiter(OperatorStore(store), lambda: now, max_failures=3)
    here.failed("10.0.0.1")
    here.failed("10.0.0.1")
    assert there.retry_after("10.0.0.1") is None
    there.failed("10.0.0.1")
    assert here.retry_after("10.0.0.1") == 60
