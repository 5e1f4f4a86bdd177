"""The ``callcenter`` command line.

The commands defined here import what they need when they run. The other command groups live in
their own modules and are imported only when one of them is asked for (or for ``--help``), so
that starting the CLI loads neither the emulator, aiohttp, the SDK nor SQLAlchemy.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from callcenter.cli.options import config_option, database_url_option
from callcenter.errors import ConfigError, StoreError
from callcenter.observability.logs import configure_logging

# The commands of other modules, by name: "module:attribute".
LAZY_COMMANDS = {
    "calls": "callcenter.cli.calls:calls",
    "demo": "callcenter.cli.sim:demo",
    "doctor": "callcenter.cli.setup:doctor",
    "emulator": "callcenter.cli.sim:emulator",
    "notify": "callcenter.cli.notify:notify",
    "simulate": "callcenter.cli.sim:simulate",
    "sip-uri": "callcenter.cli.setup:sip_uri",
    "webhooks": "callcenter.cli.webhooks:webhooks",
}


class LazyGroup(click.Group):
    """A group whose commands from :data:`LAZY_COMMANDS` are imported when first looked up.

    Click's documented pattern for lazily loaded subcommands ("Complex Applications").
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, in order (the lazy ones without importing them)."""
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module if it is a lazy one."""
        if cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{LAZY_COMMANDS[cmd_name]} is not a click command")
        return command


@click.group(cls=LazyGroup)
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
@config_option(required=True)
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to listen on.")
# Two workers of eight threads: one worker per core of the 2-core machine the benchmarks
# run on, so two webhooks never share one GIL. An idle worker costs 2-3 ms of CPU a second
# (its pollers and lease keeper), so more workers cost little; what sets the knee is CPU per
# call (bench/intake_profile.py). Eight threads leave webhooks free while console streams
# hold up to half of them.
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
@database_url_option(help="Database URL (default: SQLite in CALLCENTER_DATA_DIR).")
def migrate(database_url: str) -> None:
    """Create or upgrade the database schema."""
    from callcenter.store import Store

    try:
        store = Store.open(database_url)
        try:
            store.migrate()
        finally:
            store.close()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database is at the latest schema")
