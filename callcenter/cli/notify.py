"""``callcenter notify``: the notification outbox from a terminal.

``list`` shows deliveries (pending, delivered, failed with the last answer) and ``retry``
makes failed ones due again, both on the store at ``--database-url``; ``test URL`` sends
one signed test event to a receiver and prints its answer.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

import click

from callcenter.cli.options import config_option, database_url_option
from callcenter.errors import ConfigError, StoreError
from callcenter.simulation.text import clip, table

__all__ = ["notify"]

LIST_COLUMNS = ("id", "type", "call_id", "status", "attempts", "url", "last_answer")
TEST_EVENT = "notify.test"  # the type of the event ``notify test`` sends


@click.group()
def notify() -> None:
    """Notifications sent to the company's systems ([[notify]])."""


@notify.command("list")
@database_url_option()
@click.option("--call", "call_id", default=None, help="Only this call's deliveries.")
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed"]),
    default=None,
    help="Only these.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_(database_url: str, call_id: str | None, status: str | None, limit: int) -> None:
    """Deliveries, newest first."""
    from callcenter.store import Store
    from callcenter.store.outbox import OutboxStore

    try:
        with Store.open(database_url) as store:
            rows = OutboxStore(store.engine, store.subscribers).list(
                call_id=call_id, status=status, limit=limit
            )
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    lines = [
        [
            str(r.id),
            r.type,
            r.call_id,
            r.status,
            str(r.attempts),
            r.url,
            clip(r.last_answer or "", 40),
        ]
        for r in rows
    ]
    for line in table(LIST_COLUMNS, lines):
        click.echo(line)


@notify.command()
@database_url_option()
@click.option("--call", "call_id", default=None, help="Only this call's failed deliveries.")
def retry(database_url: str, call_id: str | None) -> None:
    """Make failed deliveries due again (a running server sends them within seconds)."""
    from callcenter.store import Store
    from callcenter.store.outbox import OutboxStore

    try:
        with Store.open(database_url) as store:
            count = OutboxStore(store.engine, store.subscribers).retry(
                now=datetime.now(UTC), call_id=call_id
            )
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{count} deliveries due again")


@notify.command()
@click.argument("url")
@config_option(help="The config whose [[notify]] table for URL names the secret.")
@click.option("--secret-env", default=None, help="The variable holding the whsec_ secret.")
def test(url: str, config_path: str | None, secret_env: str | None) -> None:
    """Send one signed test event to URL and print the receiver's answer."""
    import httpx

    from callcenter.notify.config import url_problem
    from callcenter.notify.delivery import post
    from callcenter.notify.signing import signed_headers

    problem = url_problem(url)
    if problem is not None:
        raise click.UsageError(problem)
    secret = os.environ.get(secret_env or _secret_env(url, config_path), "")
    if not secret:
        raise click.UsageError("no secret: set the variable the [[notify]] table names")
    now = datetime.now(UTC)
    event_id = f"evt_{uuid.uuid4().hex}"
    document = {"type": TEST_EVENT, "id": event_id, "created_at": int(now.timestamp()), "data": {}}
    body = json.dumps(document, separators=(",", ":"))
    headers = signed_headers(secret, event_id=event_id, at=now, body=body)
    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        answer = post(client, url, headers=headers, body=body, now=now)
    click.echo(f"{url}: {answer.text or 'no answer'}")
    if not answer.delivered:
        raise SystemExit(1)


def _last(answer: str | None) -> str:
    return clip(answer or "", 40)


def _secret_env(url: str, config_path: str | None) -> str:
    """The secret variable of the ``[[notify]]`` table for ``url`` in the config."""
    from callcenter.config.loader import load_config

    if config_path is None:
        raise click.UsageError("pass --config (or --secret-env) to find the secret")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    for endpoint in config.notify:
        if endpoint.url == url:
            return endpoint.secret_env
    raise click.UsageError(f"{config_path} has no [[notify]] table for {url}")
