"""The options several commands share, each declared once: ``--config`` and ``--database-url``.

Each is a decorator factory, so that a command keeps its own help text where its use of the
option differs (``simulate --config`` is the config of a controller of its own), while the flag,
the parameter it fills, its type and its environment fallback are the same everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["config_option", "database_url_option"]

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "TOML config file (or CALLCENTER_CONFIG)."
DATABASE_URL_HELP = (
    "Database URL (default: CALLCENTER_DATABASE_URL, else SQLite in CALLCENTER_DATA_DIR)."
)


def config_option(*, required: bool = False, help: str = CONFIG_HELP) -> Callable[[F], F]:
    """``--config FILE``, else ``CALLCENTER_CONFIG``: the ``config_path`` parameter (a str)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="CALLCENTER_CONFIG",
        required=required,
        help=help,
    )


def database_url_option(*, help: str = DATABASE_URL_HELP) -> Callable[[F], F]:
    """``--database-url URL``, else ``CALLCENTER_DATABASE_URL``, else the SQLite file the
    controller would open: the ``database_url`` parameter, never None."""
    return click.option(
        "--database-url",
        envvar="CALLCENTER_DATABASE_URL",
        default=None,
        callback=_or_default_database,
        help=help,
    )


def _or_default_database(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """The URL given, else the database the controller would open, as ``Settings`` does."""
    if value:
        return value
    from callcenter.store import default_sqlite_url  # the store loads SQLAlchemy: only when asked

    return default_sqlite_url(Path(os.environ.get("CALLCENTER_DATA_DIR") or "var").resolve())
