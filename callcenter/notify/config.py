"""The ``[[notify]]`` tables: where events go, which events, for which routes.

Validated at start-up with the file, line and key of each error. A secret is only ever an
``env:NAME`` reference; :func:`resolve_secrets` reads it from the environment (in
``create_app`` or the CLI, never at import) and masks it in ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from callcenter.config.reader import Section, quoted
from callcenter.errors import ConfigError
from callcenter.net import is_loopback

__all__ = ["EVENT_TYPES", "Endpoint", "endpoints", "resolve_secrets", "url_problem"]

# The event types a receiver may subscribe to (docs/notifications.md).
EVENT_TYPES: Final = ("call.ended", "call.analyzed", "call.transferred", "call.escalated")
_ENV_PREFIX: Final = "env:"
_SECRET_PREFIX: Final = "whsec_"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One receiver: its URL, the env variable of its secret, its events and routes.

    ``routes`` empty means every route. ``secret`` is empty until :func:`resolve_secrets`.
    """

    url: str
    secret_env: str
    events: tuple[str, ...]
    routes: tuple[str, ...] = ()
    key: str = "notify[0]"  # where it is written, for errors found after loading
    line: int | None = None
    secret: str = field(default="", repr=False)

    def wants(self, event_type: str, route: str | None) -> bool:
        """Whether this receiver takes ``event_type`` for a call on ``route``."""
        if event_type not in self.events:
            return False
        return not self.routes or route in self.routes


def endpoints(root: Section, route_names: tuple[str, ...]) -> tuple[Endpoint, ...]:
    """The ``[[notify]]`` tables of the document whose root table is ``root``."""
    found: list[Endpoint] = []
    for section in root.tables("notify"):
        section.check_keys(("url", "secret", "events", "routes"))
        url = section.required_text("url")
        _check_url(section, url)
        if any(endpoint.url == url for endpoint in found):
            raise section.error("url", "another [[notify]] table has this url; merge the two")
        secret = section.required_text("secret")
        if not secret.startswith(_ENV_PREFIX) or not secret[len(_ENV_PREFIX) :].strip():
            raise section.error("secret", 'must be an "env:NAME" reference, never the secret')
        events = section.texts("events") or ("call.ended",)
        for index, event in enumerate(events):
            if event not in EVENT_TYPES:
                raise section.context.error(
                    (*section.path, "events", index),
                    f"unknown event {quoted(event)}; expected one of {', '.join(EVENT_TYPES)}",
                )
        routes = section.texts("routes")
        for index, route in enumerate(routes):
            if route not in route_names:
                raise section.context.error(
                    (*section.path, "routes", index), f"no route named {quoted(route)}"
                )
        path = section.path
        found.append(
            Endpoint(
                url=url,
                secret_env=secret[len(_ENV_PREFIX) :].strip(),
                events=events,
                routes=routes,
                key=f"notify[{path[-1]}]",
                line=section.context.locator.line_of((*path, "secret")),
            )
        )
    return tuple(found)


def resolve_secrets(
    file: str, found: tuple[Endpoint, ...], environ: Mapping[str, str]
) -> tuple[Endpoint, ...]:
    """``found`` with every secret read from ``environ``; ConfigError if one is unset or bad."""
    resolved: list[Endpoint] = []
    for endpoint in found:
        value = environ.get(endpoint.secret_env, "").strip()
        key = f"{endpoint.key}.secret"
        if not value:
            reason = f"environment variable {endpoint.secret_env} is not set"
            raise ConfigError(file, key, reason, endpoint.line)
        if not _is_secret(value):
            reason = f"{endpoint.secret_env} is not a Standard Webhooks secret (whsec_ + base64)"
            raise ConfigError(file, key, reason, endpoint.line)
        resolved.append(dataclasses.replace(endpoint, secret=value))
    return tuple(resolved)


def _is_secret(value: str) -> bool:
    raw = value.removeprefix(_SECRET_PREFIX)
    try:
        return len(base64.b64decode(raw + "==", validate=False)) > 0
    except (binascii.Error, ValueError):
        return False


def url_problem(url: str) -> str | None:
    """Why ``url`` may not receive notifications, or None: https, or http to loopback only."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{quoted(url)} is not an http(s) URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "must be https (plain http only to a loopback address)"
    return None


def _check_url(section: Section, url: str) -> None:
    problem = url_problem(url)
    if problem is not None:
        raise section.error("url", problem)
