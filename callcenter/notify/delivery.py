"""One delivery attempt: POST a signed body, read a bounded answer, say what came of it.

Redirects are not followed (a 3xx is a failure to retry: the receiver must give its real
URL), at most :data:`MAX_ANSWER_BYTES` of the answer are read, and every network error is an
answer like any other, recorded and retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

__all__ = ["MAX_ANSWER_BYTES", "Answer", "post"]

MAX_ANSWER_BYTES: Final = 4096  # of a receiver's answer, kept as its last answer


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got back: an HTTP status (None for a network error) and a summary."""

    status: int | None
    text: str  # "200 ok…", "ConnectTimeout", … (the first bytes of the body)
    retry_after: float | None = None  # seconds, when the receiver asked

    @property
    def delivered(self) -> bool:
        """A 2xx: the receiver took the event."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """A 410: the receiver asks never to be sent this again."""
        return self.status == 410


def post(
    client: httpx.Client, url: str, *, headers: dict[str, str], body: str, now: datetime
) -> Answer:
    """POST ``body`` to ``url`` once; never raises for what the network or receiver does."""
    try:
        with client.stream(
            "POST", url, content=body.encode(), headers=headers, follow_redirects=False
        ) as response:
            head = _read_bounded(response)
    except httpx.HTTPError as exc:
        return Answer(None, type(exc).__name__)
    text = f"{response.status_code} {head.decode(errors='replace')}".strip()
    retry_after = _retry_after(response.headers.get("retry-after"), now)
    return Answer(response.status_code, text[:500], retry_after)


def _read_bounded(response: httpx.Response) -> bytes:
    """The answer's first bytes; the rest is never read."""
    head = b""
    for chunk in response.iter_raw():
        head += chunk
        if len(head) >= MAX_ANSWER_BYTES:
            break
    return head[:MAX_ANSWER_BYTES]


def _retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: a number or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - now).total_seconds())
