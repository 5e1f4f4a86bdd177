"""Webhook verification with the SDK, against every configured secret (for rotation)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import openai

from callcenter.errors import SignatureError

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

# What the headers may hold (Standard Webhooks): an id of visible ASCII, Unix seconds, and
# space-separated "v1,<base64>" signatures (several while a secret rotates).
_WEBHOOK_ID_RE = re.compile(r"[\x21-\x7e]{1,256}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"[\x20-\x7e]{1,4096}")


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

        ``SignatureError.reason`` is one of ``unsigned``, ``malformed``, ``bad_timestamp``,
        ``stale`` or ``forged``; the first three are malformed requests (400), the rest
        authentication failures (401). The header values are checked before the SDK sees
        them: it compares signatures as text, which fails on anything but ASCII.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        if any(not lowered.get(name) for name in REQUIRED_HEADERS):
            raise SignatureError("unsigned")
        if not _WEBHOOK_ID_RE.fullmatch(lowered["webhook-id"]) or not _SIGNATURE_RE.fullmatch(
            lowered["webhook-signature"]
        ):
            raise SignatureError("malformed")
        if not _TIMESTAMP_RE.fullmatch(lowered["webhook-timestamp"]):
            raise SignatureError("bad_timestamp")
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
