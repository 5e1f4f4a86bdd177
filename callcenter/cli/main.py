"""The ``callcenter`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from callcenter.cli.calls import calls
from callcenter.cli.setup import doctor, sip_uri
from callcenter.cli.sim import demo, emulator, simulate
from callcenter.cli.webhooks import webhooks
from callcenter.errors import ConfigError, StoreError
from callcenter.observability.logs import configure_logging


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
@click.option(
    "--json-logs/--text-logs", default=None, help="Log format (default: JSON unless a terminal)."
)
@click.pass_context
def main(ctx: click.Context, log_level: str, json_logs: bool | None) -> None:
    """callcenter: answer phone lines with OpenAI Realtime voice models over SIP."""
    ctx.ensure_object(dict)
    ctx.obj["log_level"] = log_level
    configure_logging(log_level, json_logs)
    # Tool modules named in the config are imported from the working directory too, as with
    # `python -m callcenter` (a console script's sys.path starts at its own directory).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="CALLCENTER_CONFIG",
    required=True,
    help="TOML config file (or CALLCENTER_CONFIG).",
)
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker.",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.pass_context
def serve(
    ctx: click.Context, config_path: str, bind: str, workers: int, threads: int, access_log: bool
) -> None:
    """Run the controller under gunicorn."""
    from callcenter.settings import Settings
    from callcenter.web.server import serve as run_server

    try:
        settings = Settings.from_env(config_path=config_path)
        run_server(
            settings,
            bind=bind,
            workers=workers,
            threads=threads,
            log_level=ctx.obj["log_level"],
            access_log=access_log,
        )
    except (ConfigError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
def check_config(config_path: str) -> None:
    """Validate a config file and its tools; print a summary (exit 1 on error)."""
    from callcenter.config.loader import check_route_tools, load_config
    from callcenter.tools.registry import load_tools

    try:
        config = load_config(config_path)
        tools = load_tools(
            config.tool_modules, default_timeout=config.tool_timeout, file=config.path
        )
        check_route_tools(config, tools)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{config_path}: OK ({config.summary()})")


@main.command()
@click.option(
    "--database-url",
    envvar="CALLCENTER_DATABASE_URL",
    default=None,
    help="Database URL (default: SQLite in CALLCENTER_DATA_DIR).",
)
def migrate(database_url: str | None) -> None:
    """Create or upgrade the database schema."""
    from callcenter.store import Store, default_sqlite_url

    url = database_url or default_sqlite_url(Path(os.environ.get("CALLCENTER_DATA_DIR", "var")))
    try:
        store = Store.open(url)
        try:
            store.migrate()
        finally:
            store.close()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database is at the latest schema")


main.add_command(doctor)
main.add_command(sip_uri)
main.add_command(emulator)
main.add_command(simulate)
main.add_command(demo)
main.add_command(webhooks)
main.add_command(calls)
