"""Commands that play calls without OpenAI: ``simulate``, ``demo`` and ``emulator``.

Registered on the main group by :mod:`callcenter.cli.main`. The work is done by
:mod:`callcenter.simulation.simulate`, :mod:`callcenter.simulation.demo` and
:mod:`callcenter.emulator`; these commands read the options and the environment, and choose
the exit code: 0 when every scenario passed, 1 when one failed, 2 for a bad scenario file,
config or usage, or a running emulator or controller that cannot be driven.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

import click
from click.core import ParameterSource

from callcenter.cli.options import config_option
from callcenter.errors import ConfigError

__all__ = ["demo", "emulator", "simulate"]

DEFAULT_EMULATOR_PORT = 8765
DEFAULT_API_KEY = "sk-emulator"
RUNNING_CONFIG = (
    "config: the running controller's own (no --config or overlay applies to it); the shipped "
    "scenarios expect the demo's, as `callcenter demo --keep` runs it"
)


class InvalidInput(click.ClickException):
    """A scenario file or the config is invalid: exit code 2, like a usage error."""

    exit_code = 2


@click.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--controller",
    "controller_url",
    metavar="URL",
    help="A running controller to drive (its base URL or webhook URL). Without it, "
    "a controller of our own is started with --config.",
)
@click.option(
    "--emulator",
    "emulator_url",
    metavar="URL",
    help="With --controller: a running emulator that delivers to that controller, driven "
    "through its control API instead of starting one (e.g. the emulator of "
    "`callcenter demo --keep`, which prints the whole command).",
)
@config_option(
    help="Config of our own controller (or CALLCENTER_CONFIG; default: the demo's config, "
    "the example config with the overlay the shipped scenarios need)."
)
@click.option(
    "--emulator-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_EMULATOR_PORT,
    show_default=True,
    help="With --controller and no --emulator: the port our emulator listens on (the "
    "controller's OPENAI_BASE_URL must be http://127.0.0.1:PORT/v1).",
)
@click.pass_context
def simulate(
    ctx: click.Context,
    scenarios: tuple[Path, ...],
    controller_url: str | None,
    emulator_url: str | None,
    config_path: str | None,
    emulator_port: int,
) -> None:
    """Play scenario files (or directories of them) against a controller.

    Prints each call's timeline as it happens, then a pass/fail table. A running
    controller (--controller) keeps its own config: nothing of --config or the demo's
    overlay applies to it.
    """
    from callcenter.config.loader import load_config
    from callcenter.errors import UnreachableError
    from callcenter.simulation.emulators import DrivenEmulator, InProcessEmulator
    from callcenter.simulation.scenario import load_scenario, scenario_files
    from callcenter.simulation.simulate import (
        Simulator,
        emulator_for,
        local_setup,
        results_table,
        running_emulator,
        sigterm_as_interrupt,
    )

    _quiet_emulator_logs(ctx)
    if controller_url and ctx.get_parameter_source("config_path") is ParameterSource.COMMANDLINE:
        raise click.UsageError("--config is for a controller of our own; drop it or --controller")
    if emulator_url and not controller_url:
        raise click.UsageError("--emulator needs --controller: the controller it delivers to")
    port_given = ctx.get_parameter_source("emulator_port") is ParameterSource.COMMANDLINE
    if emulator_url and port_given:
        raise click.UsageError(
            "--emulator-port is for an emulator of our own; drop it or --emulator"
        )
    with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
        try:
            loaded = [load_scenario(path) for path in scenario_files(scenarios)]
            own_config: Path | None = None
            if not controller_url:
                own_config = Path(config_path) if config_path else _demo_config(stack)
                load_config(own_config)
        except ConfigError as exc:
            raise InvalidInput(str(exc)) from exc
        if not loaded:
            raise InvalidInput("no scenario files found (*.toml)")
        emulator: DrivenEmulator
        try:
            if controller_url and emulator_url:
                remote = stack.enter_context(running_emulator(emulator_url, controller_url))
                emulator, idle = remote, remote.idle
                click.echo(
                    f"emulator at {remote.client.url} (running), delivering to {controller_url}"
                )
            elif controller_url:
                api_key, secret = _controller_credentials()
                own = stack.enter_context(
                    emulator_for(
                        controller_url, port=emulator_port, api_key=api_key, webhook_secret=secret
                    )
                )
                emulator, idle = InProcessEmulator(own), None
                click.echo(f"emulator at {own.base_url}, delivering to {controller_url}")
            else:
                assert own_config is not None  # chosen above when there is no --controller
                click.echo(f"starting a controller with {own_config} and the emulator...")
                setup = stack.enter_context(local_setup(own_config))
                emulator, idle = InProcessEmulator(setup.emulator), setup.controller_idle
        except UnreachableError as exc:
            raise InvalidInput(f"cannot drive {exc}") from exc
        except (OSError, RuntimeError) as exc:
            raise click.ClickException(f"cannot start: {exc}") from exc
        if controller_url:
            click.echo(RUNNING_CONFIG)
        try:
            results = Simulator(emulator, click.echo, controller_idle=idle).run(loaded)
        except UnreachableError as exc:
            raise click.ClickException(f"lost the emulator: {exc}") from exc
    for line in results_table(results):
        click.echo(line)
    ctx.exit(0 if all(result.passed for result in results) else 1)


@click.command()
@click.option("--keep", is_flag=True, help="Keep the emulator and controller running afterwards.")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Run the whole loop on this machine, no OpenAI account needed: the emulator of
    OpenAI's side, the controller and a few sample calls, printed as they happen."""
    from callcenter.simulation.demo import run_demo

    _quiet_emulator_logs(ctx)
    try:
        status = run_demo(click.echo, keep=keep)
    except (OSError, RuntimeError) as exc:
        raise click.ClickException(f"the demo could not start: {exc}") from exc
    ctx.exit(status)


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_EMULATOR_PORT, show_default=True, type=int)
@click.option(
    "--api-key",
    default=DEFAULT_API_KEY,
    show_default=True,
    help="The key the controller must send.",
)
@click.option("--webhook-secret", help="Signing secret (default: a fresh whsec_ one).")
@click.option("--webhook-url", metavar="URL", help="Where to deliver realtime.call.incoming.")
@click.option(
    "--server-timings",
    type=click.Choice(["realistic", "none"]),
    default="realistic",
    show_default=True,
    help="realistic: the greeting's audio starts 300-600 ms after it is asked for, a reply's "
    "400-900 ms after the caller stops; none: at once.",
)
@click.option("--seed", default=0, show_default=True, help="Seeds the drawn server timings.")
def emulator(
    host: str,
    port: int,
    api_key: str,
    webhook_secret: str | None,
    webhook_url: str | None,
    server_timings: str,
    seed: int,
) -> None:
    """Run the emulator of OpenAI's side (REST, sideband, webhooks) until Ctrl-C."""
    from callcenter.emulator import Emulator, Pacing, run_emulator
    from callcenter.emulator.session_state import with_server_timings

    pacing = with_server_timings(Pacing(seed=seed), server_timings)

    def ready(started: Emulator) -> None:
        shown_key = api_key if api_key == DEFAULT_API_KEY else "the --api-key given"
        click.echo(f"emulator serving on {started.url}")
        click.echo(f"  OPENAI_BASE_URL={started.base_url}")
        click.echo(f"  OPENAI_API_KEY={shown_key}")
        click.echo(f"  OPENAI_WEBHOOK_SECRET={started.webhook_secret}")
        click.echo(f"  webhooks go to {started.webhook_url or 'nowhere yet (--webhook-url)'}")
        click.echo(f"  place a call: POST {started.url}/_emulator/calls")
        click.echo(f"  server timings: {server_timings} (seed {seed})")

    run_emulator(host, port, api_key, webhook_secret, webhook_url, pacing=pacing, on_ready=ready)


def _demo_config(stack: contextlib.ExitStack) -> Path:
    """The demo's config (the example's with its overlay), written to a temporary directory
    that ``stack`` removes: the config the shipped scenarios name."""
    from callcenter.simulation.demo import write_demo_config

    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="callcenter-simulate-"))
    overlay = write_demo_config(Path(directory))
    click.echo(f"config: the example config with {overlay.changes}")
    return overlay.path


def _controller_credentials() -> tuple[str, str]:
    """The key and the (first) webhook secret the user's controller is configured with."""
    api_key = os.environ.get("OPENAI_API_KEY", "")
    secret = os.environ.get("OPENAI_WEBHOOK_SECRET", "").split(",")[0].strip()
    if not api_key or not secret:
        raise click.UsageError(
            "--controller needs OPENAI_API_KEY and OPENAI_WEBHOOK_SECRET set to the values "
            "the controller uses, so that the emulator accepts its requests and signs its "
            "webhooks with its secret."
        )
    return api_key, secret


def _quiet_emulator_logs(ctx: click.Context) -> None:
    """Keep the in-process emulator's INFO lines out of the timeline unless a log level
    was asked for (``callcenter --log-level INFO simulate …``)."""
    root = ctx.find_root()
    if root is not ctx and root.get_parameter_source("log_level") is ParameterSource.DEFAULT:
        logging.getLogger("callcenter.emulator").setLevel(logging.WARNING)
