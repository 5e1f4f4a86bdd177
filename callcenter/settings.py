"""Process settings from the environment: keys, secrets, paths and the database URL.

Read once, by the CLI or :func:`callcenter.web.app.create_app`, never at import. Secrets are
masked in ``repr`` so that settings can be logged.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.errors import ConfigError
from callcenter.operators.auth import OperatorToken, parse_operator_tokens
from callcenter.store import default_sqlite_url

ENV_FILE = "environment"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the controller needs besides the TOML config."""

    config_path: Path
    database_url: str
    data_dir: Path
    openai_api_key: str = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False)
    openai_base_url: str | None = None
    control_deadline: float = 5.0
    operator_tokens: tuple[OperatorToken, ...] = field(default=(), repr=False)
    secret_key: str | None = field(default=None, repr=False)  # signs console cookies
    max_streams: int | None = None  # open SSE streams per worker; None: half its threads
    lease_seconds: float = 6.0  # a held call's lease lasts this long after its last renewal

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``); ConfigError if unusable."""
        env = os.environ if environ is None else environ
        path = config_path or env.get("CALLCENTER_CONFIG")
        if not path:
            raise ConfigError(
                ENV_FILE, "CALLCENTER_CONFIG", "not set; pass --config FILE or set the variable"
            )
        data_dir = Path(env.get("CALLCENTER_DATA_DIR") or "var").resolve()
        database_url = env.get("CALLCENTER_DATABASE_URL") or default_sqlite_url(data_dir)
        api_key = env.get("OPENAI_API_KEY", "")
        if not api_key:
            raise ConfigError(ENV_FILE, "OPENAI_API_KEY", "not set")
        secrets = parse_webhook_secrets(env.get("OPENAI_WEBHOOK_SECRET", ""))
        deadline = env.get("CALLCENTER_CONTROL_DEADLINE", "5")
        try:
            control_deadline = float(deadline)
        except ValueError:
            raise ConfigError(
                ENV_FILE, "CALLCENTER_CONTROL_DEADLINE", f"{deadline!r} is not a number of seconds"
            ) from None
        lease = env.get("CALLCENTER_LEASE_SECONDS", "6")
        try:
            lease_seconds = float(lease)
        except ValueError:
            lease_seconds = -1.0
        if not 0 < lease_seconds <= 10:
            raise ConfigError(
                ENV_FILE,
                "CALLCENTER_LEASE_SECONDS",
                f"{lease!r} is not a number of seconds in (0, 10]",
            )
        return cls(
            config_path=Path(path),
            database_url=database_url,
            data_dir=data_dir,
            openai_api_key=api_key,
            webhook_secrets=secrets,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            control_deadline=control_deadline,
            operator_tokens=parse_operator_tokens(env.get("CALLCENTER_OPERATOR_TOKENS", "")),
            secret_key=env.get("CALLCENTER_SECRET_KEY") or None,
            max_streams=parse_max_streams(env.get("CALLCENTER_MAX_STREAMS", "")),
            lease_seconds=lease_seconds,
        )


def parse_max_streams(value: str) -> int | None:
    """``CALLCENTER_MAX_STREAMS``: a positive count, or None when unset."""
    if not value.strip():
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(ENV_FILE, "CALLCENTER_MAX_STREAMS", f"{value!r} is not a positive count")
    return count


def parse_webhook_secrets(value: str) -> tuple[str, ...]:
    """Split ``OPENAI_WEBHOOK_SECRET`` (comma-separated during a rotation) and check each one."""
    secrets = tuple(part.strip() for part in value.split(",") if part.strip())
    if not secrets:
        raise ConfigError(ENV_FILE, "OPENAI_WEBHOOK_SECRET", "not set")
    for index, secret in enumerate(secrets):
        if secret.startswith("whsec_"):
            try:
                base64.b64decode(secret[len("whsec_") :], validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(
                    ENV_FILE,
                    f"OPENAI_WEBHOOK_SECRET[{index}]",
                    "starts with whsec_ but the rest is not valid base64",
                ) from None
    return secrets
