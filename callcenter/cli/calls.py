"""``callcenter calls``: the operator API from a terminal.

``list``, ``show``, ``transfer``, ``hangup``, ``instruct``, ``tail`` and ``audit`` talk to a
running server at ``--url`` (or ``CALLCENTER_URL``) with ``--token`` (or
``CALLCENTER_OPERATOR_TOKEN``); ``tail`` follows a live call's transcript over SSE. What a
token may do is its role's, decided by the server: a refusal prints the API's 403 sentence
and exits 1.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

import click
import httpx

from callcenter.call.vocabulary import CallOutcome, CallStatus
from callcenter.operators.console_format import pretty_json
from callcenter.simulation.text import clip, latency_lines, table

__all__ = ["calls"]

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = 15.0
TRANSFER_TIMEOUT = 130.0  # the API answers a transfer once it is over: at most 120 s
LIST_COLUMNS = ("call_id", "status", "route", "caller_number", "dialled_number", "received_at")
AUDIT_COLUMNS = ("id", "at", "operator", "action", "call_id", "result", "client")


class OperatorClient:
    """The operator API at ``url`` with a bearer ``token``."""

    def __init__(self, url: str, token: str | None) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self._token = token

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header; UsageError when no token was given."""
        if not self._token:
            raise click.UsageError("no token: pass --token or set CALLCENTER_OPERATOR_TOKEN")
        return {"Authorization": f"Bearer {self._token}"}

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET ``path``; ClickException on an error reply."""
        return _answer(self._send("GET", path, params=dict(params or {})))

    def post(self, path: str, body: Mapping[str, object] | None = None) -> dict[str, Any]:
        """POST ``body`` as JSON to ``path``; ClickException on an error reply."""
        return _answer(self._send("POST", path, json=dict(body or {})))

    def events(self, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The ``(event, data)`` pairs of an SSE stream, until it ends."""
        try:
            with httpx.stream(
                "GET", self.base + path, headers=self.headers, timeout=httpx.Timeout(TIMEOUT)
            ) as response:
                if response.status_code != 200:
                    response.read()
                    _answer(response)
                event = "message"
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        yield event, json.loads(line.removeprefix("data: "))
                        event = "message"
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.base}: {exc}") from exc

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        timeout = TRANSFER_TIMEOUT if path.endswith("/transfer") else TIMEOUT
        try:
            return httpx.request(
                method, self.base + path, headers=self.headers, timeout=timeout, **options
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.base}: {exc}") from exc


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or not isinstance(body, dict):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = error.get("message") or response.text[:200]
        code = error.get("code") or "error"
        raise click.ClickException(f"{response.status_code} {code}: {message}")
    return body


@click.group()
@click.option("--url", envvar="CALLCENTER_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="CALLCENTER_OPERATOR_TOKEN", help="An operator's bearer token.")
@click.pass_context
def calls(ctx: click.Context, url: str, token: str | None) -> None:
    """Watch and act on calls through a running server's operator API."""
    ctx.obj = OperatorClient(url, token)


@calls.command("list")
@click.option("--status", type=click.Choice([status.value for status in CallStatus]))
@click.option("--outcome", type=click.Choice([outcome.value for outcome in CallOutcome]))
@click.option("--route", help="Only calls of this route.")
@click.option("--number", help="The caller's or the dialled number.")
@click.option("--ticket", help="The escalation's ticket.")
@click.option("--text", help="Words one transcript line holds.")
@click.option("--since", help="ISO time with a zone, e.g. 2026-01-31T09:00:00+00:00.")
@click.option("--until", help="ISO time with a zone.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor of a previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_obj
def list_calls(client: OperatorClient, /, as_json: bool, **filters: str | int | None) -> None:
    """List calls, newest first."""
    params = {key: str(value) for key, value in filters.items() if value is not None}
    body = client.get("/calls", params)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    rows = [[str(call.get(column) or "-") for column in LIST_COLUMNS] for call in body["calls"]]
    for line in table(LIST_COLUMNS, rows):
        click.echo(line)
    if body.get("next_cursor"):
        click.echo(f"more: --cursor {body['next_cursor']}")


@calls.command()
@click.argument("call_id")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_obj
def show(client: OperatorClient, call_id: str, as_json: bool) -> None:
    """Show one call's timeline."""
    body = client.get(f"/calls/{call_id}")
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    for key in ("call_id", "status", "route", "caller_number", "dialled_number", "outcome"):
        click.echo(f"{key}: {body.get(key) or '-'}")
    handoff = body.get("handoff") or {}
    if handoff.get("ticket"):
        click.echo(f"ticket: {handoff['ticket']} ({handoff.get('trigger')})")
    click.echo("caller's wait:")
    for line in latency_lines(body.get("latency")):
        click.echo(f"  {line}")
    click.echo("transcript:")
    for line in body.get("transcript", []):
        click.echo(f"  {line.get('speaker')}: {line.get('text')}")
    for tool in body.get("tool_calls", []):
        data = tool["data"]
        click.echo(f"{tool['kind']}: {data.get('name')} ({data.get('duration_ms', '-')} ms)")
        for title, key in (("arguments", "arguments"), ("result", "output"), ("error", "error")):
            if data.get(key) is not None:
                click.echo(f"  {title}:")
                click.echo(textwrap.indent(pretty_json(data[key]), "    "))
    for escalation in body.get("escalations", []):
        click.echo(f"{escalation['kind']}:")
        click.echo(textwrap.indent(pretty_json(escalation["data"]), "  "))


@calls.command()
@click.argument("call_id")
@click.argument("target")
@click.pass_obj
def transfer(client: OperatorClient, call_id: str, target: str) -> None:
    """Transfer a live call to TARGET (a target name, or a URI where config allows)."""
    _done(client.post(f"/calls/{call_id}/transfer", {"target": target}))


@calls.command()
@click.argument("call_id")
@click.pass_obj
def hangup(client: OperatorClient, call_id: str) -> None:
    """Hang a live call up."""
    _done(client.post(f"/calls/{call_id}/hangup"))


@calls.command()
@click.argument("call_id")
@click.argument("text")
@click.pass_obj
def instruct(client: OperatorClient, call_id: str, text: str) -> None:
    """Give the agent on a live call a supervisor's instruction."""
    _done(client.post(f"/calls/{call_id}/instruct", {"text": text}))


@calls.command()
@click.argument("call_id")
@click.option("--events", "every_event", is_flag=True, help="Print every event, not only lines.")
@click.pass_obj
def tail(client: OperatorClient, call_id: str, every_event: bool) -> None:
    """Follow a call's transcript live until the call ends."""
    for event, data in client.events(f"/calls/{call_id}/stream"):
        if event == "transcript":
            line = data.get("data", {})
            click.echo(f"{line.get('speaker')}: {line.get('text')}")
        elif event in ("end", "timeout"):
            click.echo(f"-- {event}: {data.get('status') or 'stream closed'}")
            return
        elif every_event:
            click.echo(f"[{event}] {clip(json.dumps(data.get('data', {})), 100)}")


@calls.command()
@click.option("--operator", help="Only rows of this operator.")
@click.option("--call", "call_id", help="Only rows of this call.")
@click.option("--action", help="Only this action (transfer, hangup, instruct, login, ...).")
@click.option("--result", help="Only this result; `refused` matches every refusal.")
@click.option("--since", help="ISO time with a zone.")
@click.option("--until", help="ISO time with a zone.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--before", type=int, help="The next_before of a previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_obj
def audit(client: OperatorClient, /, as_json: bool, **filters: str | int | None) -> None:
    """The audit trail, newest first (an admin's token)."""
    params = {key: str(value) for key, value in filters.items() if value is not None}
    body = client.get("/audit", params)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    rows = [
        [str(entry.get(column) or "-") for column in AUDIT_COLUMNS] for entry in body["entries"]
    ]
    for line in table(AUDIT_COLUMNS, rows):
        click.echo(line)
    if body.get("next_before"):
        click.echo(f"more: --before {body['next_before']}")


def _done(body: Mapping[str, Any]) -> None:
    result = body.get("result")
    click.echo(f"{body.get('action')} {body.get('call_id')}: {result}")
    for attempt in body.get("targets") or ():
        reason = f" ({attempt.get('reason')})" if attempt.get("reason") else ""
        click.echo(f"  {attempt.get('target')}: {attempt.get('result')}{reason}")
