"""Webhooks the way OpenAI sends them: Standard Webhooks signing, delivery and redelivery.

A delivery POSTs one event (the same body and ``webhook-id`` every time) until the
receiver answers 2xx, retrying on any other answer or on no answer within the timeout, with
exponential backoff and a fresh timestamp and signature on each attempt. ``Delivery``
options inject what a receiver must survive: duplicates (one after another or at once),
late timestamps and signatures made with the wrong secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from callcenter.emulator.ids import hex_id
from callcenter.emulator.state import WebhookAttempt

logger = logging.getLogger(__name__)

USER_AGENT = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
SIP_DOMAIN = "sip.example.com"
CARRIER_ADDRESS = "203.0.113.10:5061"
ANSWER_KEPT_BYTES = 2048


def sign_webhook(secret: str, webhook_id: str, timestamp: int | str, body: str | bytes) -> str:
    """The ``webhook-signature`` value for ``body``: ``v1,<base64 HMAC-SHA256>``.

    The key is the base64 after ``whsec_`` (any other secret is used as UTF-8 text), and
    the signed text is ``"{webhook_id}.{timestamp}.{body}"``, as the SDK verifies it.
    """
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    text = body.decode() if isinstance(body, bytes) else body
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.{text}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_headers(
    secret: str, webhook_id: str, timestamp: int, body: str | bytes
) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery of ``body``, signed with ``secret``."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def new_webhook_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sip_headers(
    call_id: str,
    from_number: str,
    to_number: str,
    caller_name: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """The INVITE's headers as OpenAI forwards them: From, To, Call-ID, Via, Contact, extras."""
    display = f'"{caller_name}" ' if caller_name else ""
    headers = [
        ("From", f"{display}<sip:{from_number}@{SIP_DOMAIN}>;tag={secrets.token_hex(4)}"),
        ("To", f"<sip:{to_number}@{SIP_DOMAIN}>"),
        ("Call-ID", f"{call_id[-24:]}@{CARRIER_ADDRESS.split(':')[0]}"),
        ("Via", f"SIP/2.0/TLS {CARRIER_ADDRESS};branch=z9hG4bK{secrets.token_hex(8)}"),
        ("Contact", f"<sip:{from_number}@{CARRIER_ADDRESS};transport=tls>"),
        *extra,
    ]
    return [{"name": name, "value": value} for name, value in headers]


def webhook_event(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope every webhook event shares."""
    return {
        "id": hex_id("evt"),
        "object": "event",
        "created_at": int(time.time()),
        "type": event_type,
        "data": dict(data),
    }


MediaSecurity = Literal["rtp", "srtp"] | None


def incoming_call_event(
    call_id: str, headers: list[dict[str, str]], media_security: MediaSecurity = "srtp"
) -> dict[str, Any]:
    """A ``realtime.call.incoming`` event; ``sip_media_security`` is left out when None
    (OpenAI omits it when the negotiated media protection is unknown)."""
    data: dict[str, Any] = {"call_id": call_id, "sip_headers": headers}
    if media_security is not None:
        data["sip_media_security"] = media_security
    return webhook_event("realtime.call.incoming", data)


def live_transport_event(
    session_id: str, headers: list[dict[str, str]], media_security: MediaSecurity = "srtp"
) -> dict[str, Any]:
    """The ``live.transport.incoming`` event OpenAI sends for the same pending SIP call (for
    the Live API; the first accept on either surface decides)."""
    data: dict[str, Any] = {"session_id": session_id, "type": "sip", "sip_headers": headers}
    if media_security is not None:
        data["sip_media_security"] = media_security
    return webhook_event("live.transport.incoming", data)


def sample_data(event_type: str) -> dict[str, Any]:
    """Plausible ``data`` for event types other than calls (``live.transport.incoming``…)."""
    if event_type == "live.transport.incoming":
        headers = sip_headers(hex_id("live"), "+14155550199", "+18005550100")
        return {"session_id": hex_id("live"), "type": "sip", "sip_headers": headers}
    if event_type.startswith("batch."):
        return {"id": hex_id("batch")}
    if event_type.startswith("response."):
        return {"id": hex_id("resp")}
    return {"id": hex_id("obj")}


def answer_start(raw: bytes) -> Any:
    """The first ``ANSWER_KEPT_BYTES`` of a receiver's answer: JSON if it parses, else text."""
    head = raw[:ANSWER_KEPT_BYTES].decode(errors="replace")
    try:
        return json.loads(head)
    except ValueError:
        return head


@dataclass(frozen=True)
class RedeliveryPolicy:
    """When to try a delivery again: after non-2xx or no answer within ``timeout`` seconds.

    The wait before attempt n+1 is ``base_delay * 2**(n-1)``, capped at ``max_delay``;
    after ``max_attempts`` the delivery gives up.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.base_delay * 2 ** (attempt - 1), self.max_delay))


@dataclass(frozen=True)
class Delivery:
    """How one event is delivered: ``copies`` deliveries of the same ``webhook-id``
    (``concurrent`` or one after another), timestamps shifted by ``timestamp_offset``
    seconds, and signed with ``secret`` instead of the emulator's if given."""

    copies: int = 1
    concurrent: bool = False
    timestamp_offset: int = 0
    secret: str | None = None


class WebhookSender:
    """Delivers events to one URL with one secret, recording every attempt."""

    def __init__(
        self, session: aiohttp.ClientSession, secret: str, policy: RedeliveryPolicy
    ) -> None:
        self._session = session
        self._secret = secret
        self._policy = policy

    async def deliver(
        self,
        url: str,
        event: Mapping[str, Any],
        delivery: Delivery,
        record: Callable[[WebhookAttempt], None],
    ) -> None:
        """Deliver ``event`` as ``delivery`` says; return when every copy is done."""
        body = json.dumps(event, separators=(",", ":"))
        webhook_id = hex_id("wh")
        copies = [
            self._deliver_copy(url, body, str(event["type"]), webhook_id, copy, delivery, record)
            for copy in range(delivery.copies)
        ]
        if delivery.concurrent:
            await asyncio.gather(*copies)
        else:
            for copy_delivery in copies:
                await copy_delivery

    async def _deliver_copy(
        self,
        url: str,
        body: str,
        event_type: str,
        webhook_id: str,
        copy: int,
        delivery: Delivery,
        record: Callable[[WebhookAttempt], None],
    ) -> None:
        secret = delivery.secret or self._secret
        timeout = aiohttp.ClientTimeout(total=self._policy.timeout)
        for attempt in range(1, self._policy.max_attempts + 1):
            timestamp = int(time.time()) + delivery.timestamp_offset
            headers = {
                **webhook_headers(secret, webhook_id, timestamp, body),
                "user-agent": USER_AGENT,
            }
            started, status, problem, answer_body = time.monotonic(), None, None, None
            try:
                async with self._session.post(
                    url, data=body, headers=headers, timeout=timeout
                ) as answer:
                    status = answer.status
                    answer_body = answer_start(await answer.read())
            except TimeoutError:
                problem = f"no answer within {self._policy.timeout}s"
            except aiohttp.ClientError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            latency = time.monotonic() - started
            record(
                WebhookAttempt(
                    webhook_id,
                    event_type,
                    attempt,
                    copy,
                    timestamp,
                    status,
                    problem,
                    latency,
                    time.time(),
                    answer_body,
                )
            )
            if status is not None and 200 <= status < 300:
                fields = {"webhook_id": webhook_id, "attempt": attempt, "status": status}
                logger.debug("webhook delivered", extra=fields)
                return
            if attempt < self._policy.max_attempts:
                await asyncio.sleep(self._policy.delay(attempt))
        fields = {
            "webhook_id": webhook_id,
            "type": event_type,
            "attempts": self._policy.max_attempts,
        }
        logger.info("webhook given up", extra=fields)
