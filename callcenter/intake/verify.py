"""Webhook verification with the SDK, against every configured secret (for rotation)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import openai

from callcenter.errors import SignatureError

logger = logging.getLogger(__name__)

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class WebhookVerifier:
    """Checks Standard Webhooks signatures with ``client.webhooks.verify_signature``.

    Any one of ``secrets`` may have signed the delivery, so that a secret can be rotated
    without downtime: deploy with ``OPENAI_WEBHOOK_SECRET=new,old``, rotate, then drop the old.
    """

    def __init__(self, client: openai.OpenAI, secrets: Sequence[str], tolerance: int = 300) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        self._webhooks = client.webhooks
        self._secrets = tuple(secrets)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the ``webhook-id`` of a genuine delivery, or raise :class:`SignatureError`.

        ``SignatureError.reason`` is one of ``unsigned``, ``bad_timestamp``, ``stale`` or
        ``forged``; ``unsigned`` and ``bad_timestamp`` are malformed requests (400), the rest
        authentication failures (401).
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        missing = [name for name in REQUIRED_HEADERS if not lowered.get(name)]
        if missing:
            raise SignatureError("unsigned")
        try:
            int(lowered["webhook-timestamp"])
        except ValueError:
            raise SignatureError("bad_timestamp") from None
        last: openai.InvalidWebhookSignatureError | None = None
        for secret in self._secrets:
            try:
                self._webhooks.verify_signature(
                    body, lowered, secret=secret, tolerance=self._tolerance
                )
            except openai.InvalidWebhookSignatureError as exc:
                if "too old" in str(exc) or "too new" in str(exc):
                    raise SignatureError("stale") from exc
                last = exc
                continue
            return lowered["webhook-id"]
        raise SignatureError("forged") from last
