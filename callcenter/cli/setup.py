"""Set-up commands of the CLI: ``callcenter doctor`` and ``callcenter sip-uri``.

Registered on the main group by :mod:`callcenter.cli.main`. The checks and the trunk facts live in
:mod:`callcenter.cli.doctor` and :mod:`callcenter.sip.trunk`; these commands read the environment
and the options, and print.
"""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import click

from callcenter.cli.options import config_option, database_url_option
from callcenter.sip.trunk import REGIONS, TRUNK_CHECKS, trunk_target

__all__ = ["doctor", "sip_uri"]

_STATUS_COLOURS = {"OK": "green", "WARN": "yellow", "FAIL": "red"}
_WIDTH = 96


@click.command()
@config_option()
@database_url_option()
@click.option(
    "--gunicorn-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="gunicorn.conf.py to check (default: -c in GUNICORN_CMD_ARGS, else ./gunicorn.conf.py).",
)
@click.option(
    "--webhook-url",
    metavar="URL",
    help="Public webhook URL; an unsigned POST must be refused by a callcenter.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 60),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the webhook URL.",
)
@click.option(
    "--sip-region",
    type=click.Choice(REGIONS),
    default="us",
    show_default=True,
    envvar="CALLCENTER_SIP_REGION",
    help="The region of the trunk's SIP host (see sip-uri); OPENAI_BASE_URL must match it.",
)
@click.pass_context
def doctor(
    ctx: click.Context,
    config_path: str | None,
    database_url: str,
    gunicorn_config: Path | None,
    webhook_url: str | None,
    timeout: float,
    sip_region: str,
) -> None:
    """Check config, secrets, database, models and serving; exit 1 if anything FAILs."""
    from callcenter.cli.doctor import Status, run_checks

    results = run_checks(
        os.environ,
        config_path=config_path,
        database_url=database_url,
        gunicorn_config=gunicorn_config,
        webhook_url=webhook_url,
        today=datetime.now(UTC).date(),
        timeout=timeout,
        sip_region=sip_region,
    )
    width = max(len(result.name) for result in results)
    for result in results:
        label = click.style(
            f"{result.status.value:<4}", fg=_STATUS_COLOURS[result.status.value], bold=True
        )
        click.echo(f"{label}  {result.name:<{width}}  {result.message}")
        if result.fix:
            click.echo(f"{'':4}  {'':<{width}}  fix: {result.fix}")
    counts = {status: sum(r.status is status for r in results) for status in Status}
    click.echo(", ".join(f"{count} {status.value}" for status, count in counts.items()))
    if counts[Status.FAIL]:
        ctx.exit(1)


@click.command("sip-uri")
@click.option(
    "--project",
    "project_id",
    required=True,
    envvar="OPENAI_PROJECT_ID",
    help="Project id (proj_…), from Settings > Project > General (or OPENAI_PROJECT_ID).",
)
@click.option(
    "--region",
    type=click.Choice(REGIONS),
    default="us",
    show_default=True,
    help="Where the project keeps its data (eu: sip-eu.api.openai.com).",
)
@click.option("--uri-only", is_flag=True, help="Print only the URI; notes go to stderr.")
def sip_uri(project_id: str, region: str, uri_only: bool) -> None:
    """Print the SIP URI to point a trunk at, and the trunk settings to check."""
    try:
        target = trunk_target(project_id, region)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--project'") from exc
    if uri_only:
        click.echo(target.uri)
        for note in target.notes:
            click.echo(f"note: {note}", err=True)
        return
    click.echo("Point the SIP trunk (its origination / inbound route) at:\n")
    click.echo(f"    {target.uri}\n")
    click.echo("and run callcenter with the API base URL of the same region:\n")
    click.echo(f"    OPENAI_BASE_URL={target.base_url}\n")
    for note in target.notes:
        click.echo(_wrap(f"Note: {note}", indent="      ") + "\n")
    click.echo("Check on the trunk:")
    for number, check in enumerate(TRUNK_CHECKS, start=1):
        click.echo(_wrap(f"  {number}. {check.title}: {check.detail}", indent="     "))
    click.echo("\nStep by step for Twilio, Telnyx, Asterisk and FreeSWITCH: docs/trunks.md")


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(
        text,
        width=_WIDTH,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
