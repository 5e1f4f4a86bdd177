"""The webhook endpoints registered with the emulated project, and the secrets that sign them.

Events the emulator delivers to an endpoint's URL are signed with that endpoint's secret
(:meth:`WebhookEndpoints.signing_secret`); every registered endpoint subscribed to an event
type receives it. A rotation may keep the previous secret valid for 24 hours, during which a
test delivery carries both signatures, as Standard Webhooks allows. The HTTP API that manages
them is :mod:`callcenter.emulator.webhook_endpoints`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from callcenter.emulator.ids import hex_id
from callcenter.emulator.webhooks import new_webhook_secret

OLD_SECRET_GRACE = 24 * 3600.0  # seconds a rotation may keep the previous secret valid


@dataclass
class WebhookEndpoint:
    """One registered endpoint, with its current (and maybe previous) signing secret."""

    id: str
    name: str
    url: str
    event_types: list[str]
    secret: str = field(repr=False)
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = 0
    old_secret: str | None = field(default=None, repr=False)
    old_secret_until: float = 0.0

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at

    def secrets(self, now: float) -> list[str]:
        """The secrets that sign deliveries now: the current one, then a previous one kept."""
        if self.old_secret and now < self.old_secret_until:
            return [self.secret, self.old_secret]
        return [self.secret]

    def rotate(self, keep_old: bool, now: float) -> None:
        """A new secret; the previous one stays valid for 24 hours if ``keep_old``."""
        self.old_secret = self.secret if keep_old else None
        self.old_secret_until = now + OLD_SECRET_GRACE if keep_old else 0.0
        self.secret = new_webhook_secret()
        self.updated_at = int(now)

    def to_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        """A ``WebhookEndpoint`` (or ``WebhookEndpointWithSecret``) object."""
        found: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "name": self.name,
            "url": self.url,
            "event_types": list(self.event_types),
            "signing_secret_hint": "whsec_…" + self.secret[-4:],
        }
        if with_secret:
            found["signing_secret"] = self.secret
        return found


class WebhookEndpoints:
    """The registered endpoints of the emulated project, in creation order."""

    def __init__(self) -> None:
        self._endpoints: dict[str, WebhookEndpoint] = {}

    def __iter__(self) -> Iterator[WebhookEndpoint]:
        return iter(list(self._endpoints.values()))

    def get(self, endpoint_id: str) -> WebhookEndpoint | None:
        """The endpoint with this id, if registered."""
        return self._endpoints.get(endpoint_id)

    def add(self, name: str, url: str, types: list[str]) -> WebhookEndpoint:
        """Register a new endpoint with a fresh secret."""
        endpoint = WebhookEndpoint(hex_id("we"), name, url, types, new_webhook_secret())
        self._endpoints[endpoint.id] = endpoint
        return endpoint

    def remove(self, endpoint_id: str) -> bool:
        """Forget an endpoint; False if there was none."""
        return self._endpoints.pop(endpoint_id, None) is not None

    def subscribed(self, event_type: str) -> list[str]:
        """The URLs of the endpoints subscribed to ``event_type``."""
        return [e.url for e in self._endpoints.values() if event_type in e.event_types]

    def signing_secret(self, url: str) -> str | None:
        """The current secret of the newest endpoint at ``url``, if one is registered there."""
        found = [e for e in self._endpoints.values() if e.url == url]
        return found[-1].secret if found else None
