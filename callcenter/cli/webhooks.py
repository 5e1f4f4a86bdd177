"""``callcenter webhooks …``: the project's webhook endpoint, set up from the shell.

Through the SDK's Webhook Endpoints API (``client.webhooks``), with the SDK's own
``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (point it at the emulator to try it out).
``create`` subscribes a URL to ``realtime.call.incoming`` and shows its signing secret once
(or writes it to an env file, mode 0600); ``rotate`` changes the secret without downtime:
OpenAI keeps signing with the old one too for 24 hours while every node is given both.
Registered on the main group by :mod:`callcenter.cli.main`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar, cast, get_args, get_type_hints
from urllib.parse import urlsplit

import click
import openai
from openai.types.webhooks.webhook_test_params import WebhookTestParams

from callcenter.cli import env_file as _env_file
from callcenter.net import is_loopback

__all__ = ["webhooks"]

T = TypeVar("T")

CALL_EVENT: Final = "realtime.call.incoming"
SECRET_VARIABLE = "OPENAI_WEBHOOK_SECRET"
WEBHOOK_PATH = "/webhooks/openai"
REQUEST_TIMEOUT = 60.0  # seconds; a test waits for OpenAI to deliver to the endpoint

# The sample events OpenAI can send, from the SDK's params of ``webhooks.test``.
TEST_EVENT_TYPES: tuple[str, ...] = get_args(get_type_hints(WebhookTestParams)["event_type"])

# What an endpoint's answer to a test delivery usually means, for callcenter.
_ANSWER_HINTS = {
    400: "the request reached callcenter but was malformed; is a proxy rewriting the body?",
    401: f"the signature did not verify: {SECRET_VARIABLE} on the node is not this endpoint's",
    404: f"nothing answers at that path; callcenter receives webhooks at {WEBHOOK_PATH}",
    413: "the body was refused as too large by a proxy in front of callcenter",
    502: "the proxy in front of callcenter could not reach it; is `callcenter serve` running?",
    503: "callcenter is up but cannot reach its database; see `callcenter doctor`",
}


def _env_file_option(help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), help=help)


@click.group()
def webhooks() -> None:
    """Create, list, test, rotate and delete the OpenAI webhook endpoints of the project."""


@webhooks.command()
@click.option("--url", required=True, help=f"Public https URL of callcenter's {WEBHOOK_PATH}.")
@click.option("--name", default="callcenter", show_default=True, help="A name to tell it by.")
@_env_file_option(f"New env file (mode 0600) to write {SECRET_VARIABLE} to, not the screen.")
@click.option("--force", is_flag=True, help=f"Set {SECRET_VARIABLE} in an existing --env-file.")
def create(url: str, name: str, env_file: Path | None, force: bool) -> None:
    """Subscribe URL to incoming calls; show its signing secret once."""
    problem = url_problem(url)
    if problem is not None:
        raise click.UsageError(f"--url {url}: {problem}")
    if env_file is not None:
        _check_writable(env_file, exists=force)
    if urlsplit(url).path.rstrip("/") != WEBHOOK_PATH:
        click.echo(f"note: callcenter receives webhooks at {WEBHOOK_PATH}, not at {url}", err=True)
    client = _client()
    endpoint = _call(lambda: client.webhooks.create(url=url, name=name, event_types=[CALL_EVENT]))
    click.echo(f"Created webhook endpoint {endpoint.id} ({endpoint.name})")
    click.echo(f"  url:     {endpoint.url}")
    click.echo(f"  events:  {', '.join(endpoint.event_types)}")
    if env_file is None:
        click.echo(f"  secret:  {endpoint.signing_secret}")
        click.echo("OpenAI shows this secret only now. Give it to every callcenter node as")
        click.echo(f"{SECRET_VARIABLE}=<secret>, or run create with --env-file next time.")
        return
    if force and env_file.exists():
        _env_file.set_value(env_file, SECRET_VARIABLE, endpoint.signing_secret)
    else:
        _env_file.create(env_file, SECRET_VARIABLE, endpoint.signing_secret)
    click.echo(f"  secret:  written to {env_file} as {SECRET_VARIABLE} (mode 0600)")


@webhooks.command("list")
def list_endpoints() -> None:
    """List the project's webhook endpoints."""
    client = _client()
    endpoints = _call(lambda: list(client.webhooks.list(limit=100)))
    if not endpoints:
        click.echo("No webhook endpoints. Create one with `callcenter webhooks create --url …`.")
        return
    rows = [("ID", "NAME", "URL", "EVENTS", "SECRET", "UPDATED")]
    rows += [
        (
            e.id,
            e.name,
            e.url,
            ",".join(e.event_types),
            e.signing_secret_hint or "",
            _date(e.updated_at or e.created_at),
        )
        for e in endpoints
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if not any(CALL_EVENT in e.event_types for e in endpoints):
        click.echo(f"note: no endpoint receives {CALL_EVENT}: calls will not reach callcenter")


@webhooks.command()
@click.argument("endpoint_id")
@click.option(
    "--event-type",
    type=click.Choice(TEST_EVENT_TYPES),
    metavar="TYPE",
    default=CALL_EVENT,
    show_default=True,
    help="Sample event to send (a call test records one call that ends as caller_gone).",
)
def test(endpoint_id: str, event_type: str) -> None:
    """Have OpenAI send ENDPOINT_ID a sample event; report its answer."""
    client = _client()
    endpoint = _call(lambda: client.webhooks.retrieve(endpoint_id))
    sample = cast(Any, event_type)  # one of the SDK's literals: click checked it
    result = _call(lambda: client.webhooks.test(endpoint_id, event_type=sample))
    status = result.status_code
    click.echo(f"Test {result.event_type} delivery to {endpoint.url}: answered HTTP {status}")
    if 200 <= status < 300:
        click.echo("OK: the endpoint verified the signature and accepted the event.")
        return
    hint = _ANSWER_HINTS.get(status, "see the logs of the node that answered")
    raise click.ClickException(f"the endpoint refused the test delivery (HTTP {status}): {hint}")


@webhooks.command()
@click.argument("endpoint_id")
@_env_file_option(f"Env file with the current secret: {SECRET_VARIABLE}=new,old in it after.")
@click.option(
    "--keep-old/--no-keep-old",
    default=True,
    show_default=True,
    help="Keep the old secret valid 24 h (no downtime); --no-keep-old after a leak.",
)
def rotate(endpoint_id: str, env_file: Path | None, keep_old: bool) -> None:
    """New signing secret for ENDPOINT_ID, and the steps to roll it out."""
    current: list[str] = []
    if env_file is not None:
        current = _current_secrets(env_file)
    client = _client()
    rotated = _call(
        lambda: client.webhooks.rotate_secret(
            endpoint_id, keep_old_secret_active_for_24_hours=keep_old
        )
    )
    new = rotated.signing_secret
    click.echo(f"Rotated the signing secret of {rotated.id} ({rotated.url}).")
    if env_file is None:
        click.echo(f"  new secret: {new}   (shown only now)")
        both = "<new secret>,<old secret>"
    else:
        _env_file.set_value(env_file, SECRET_VARIABLE, ",".join(dict.fromkeys([new, *current])))
        click.echo(f"  new secret: written to {env_file}, before the old one (mode 0600)")
        both = f"<new>,<old> (as {env_file} now has it)"
    if keep_old:
        click.echo("OpenAI signs each delivery with both secrets for the next 24 hours. Now:")
    else:
        click.echo("The old secret no longer verifies: nodes without the new one refuse")
        click.echo("deliveries (OpenAI retries them) until step 2 is done. Now, quickly:")
    click.echo(f"  1. On every node, set {SECRET_VARIABLE}={both}.")
    click.echo("  2. Restart or roll the nodes (systemctl restart callcenter, or kubectl rollout")
    click.echo("     restart deployment/callcenter); each then accepts either secret.")
    click.echo(f"  3. Once every node runs with both, set {SECRET_VARIABLE}=<new> alone and roll")
    click.echo("     again. `callcenter webhooks test` checks a node at any step.")


@webhooks.command()
@click.argument("endpoint_id")
@click.confirmation_option(prompt="Delete this webhook endpoint? Calls stop reaching it.")
def delete(endpoint_id: str) -> None:
    """Delete ENDPOINT_ID: OpenAI stops delivering to it."""
    client = _client()
    deleted = _call(lambda: client.webhooks.delete(endpoint_id))
    click.echo(f"Deleted webhook endpoint {deleted.id}.")


def url_problem(url: str) -> str | None:
    """Why OpenAI could not deliver to ``url``, or None.

    An https URL with a host; plain http only to a loopback address (for the emulator).
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return "not a URL with a host (e.g. https://callcenter.example.com/webhooks/openai)"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return None
    return "OpenAI delivers webhooks over https only (plain http only to a loopback address)"


def _check_writable(env_file: Path, *, exists: bool) -> None:
    """Refuse, before anything is created, an env file that could not take the secret."""
    if env_file.exists() and not exists:
        raise click.UsageError(
            f"--env-file {env_file} exists; pass --force to set {SECRET_VARIABLE} in it"
        )
    if not env_file.parent.is_dir():
        raise click.UsageError(f"--env-file {env_file}: no directory {env_file.parent}")


def _current_secrets(env_file: Path) -> list[str]:
    """The secrets ``env_file`` holds now, which the rotation must keep accepted."""
    if not env_file.is_file():
        raise click.UsageError(f"--env-file {env_file} does not exist")
    value = _env_file.read_value(env_file, SECRET_VARIABLE)
    secrets = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not secrets:
        raise click.UsageError(f"--env-file {env_file} has no {SECRET_VARIABLE} to keep")
    return secrets


def _client() -> openai.OpenAI:
    """The SDK client, from the environment; no retries, since create and rotate are not
    idempotent (a retried rotation would keep a secret nobody has)."""
    if not os.environ.get("OPENAI_API_KEY"):
        raise click.ClickException("OPENAI_API_KEY is not set: export the project's API key")
    return openai.OpenAI(max_retries=0, timeout=REQUEST_TIMEOUT)


def _call(request: Callable[[], T]) -> T:
    """Run one SDK request; its failure becomes one clean error line (exit 1)."""
    try:
        return request()
    except openai.APIStatusError as exc:
        raise click.ClickException(
            f"OpenAI answered HTTP {exc.status_code}: {_message(exc)}"
        ) from exc
    except openai.APITimeoutError as exc:
        raise click.ClickException(f"OpenAI did not answer within {REQUEST_TIMEOUT:g}s") from exc
    except openai.APIConnectionError as exc:
        where = os.environ.get("OPENAI_BASE_URL") or "the OpenAI API"
        raise click.ClickException(f"could not reach {where}: {exc}") from exc


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


def _date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")
