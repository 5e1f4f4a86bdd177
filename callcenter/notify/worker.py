"""The delivery worker: a lane per receiver in every serving process, sending due notifications.

Every process that serves delivers, so a node lost with events pending loses none: its
claims lapse and another process takes them. Each receiver has its own lane (a thread), so
a receiver that is down or slow delays only its own events, never another's; one more lane
gives up on events queued for a receiver the config no longer names. Each pass of a lane
claims a few due rows (``OutboxStore.claim``), signs and posts each, and records the answer
with the next attempt's time from the :class:`~callcenter.notify.backoff.Backoff`. Calls
never wait on it: their writes only add rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from callcenter.notify.backoff import Backoff
from callcenter.notify.config import Endpoint
from callcenter.notify.delivery import Answer, post
from callcenter.notify.payload import body
from callcenter.notify.signing import signed_headers
from callcenter.observability import metrics
from callcenter.store import Store
from callcenter.store.outbox import DELIVERED, FAILED, PENDING, Notification, OutboxStore

__all__ = ["DeliveryWorker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Lane:
    """The rows one lane claims: one receiver's (``url``), or those of no receiver (None)."""

    url: str | None
    name: str  # the thread's name


class DeliveryWorker:
    """Delivers the outbox to the configured receivers until stopped."""

    def __init__(
        self,
        store: Store,
        endpoints: tuple[Endpoint, ...],
        *,
        owner: str,
        clock: Callable[[], datetime],
        backoff: Backoff | None = None,
        # timings
        timeout: float = 10.0,  # seconds one POST may take, connecting included
        poll: float = 1.0,  # seconds between two looks at the outbox when it is idle
        batch: int = 10,  # rows claimed at a time
    ) -> None:
        self._store = store
        self._outbox = OutboxStore(store.engine, store.subscribers)
        self._endpoints: Mapping[str, Endpoint] = {e.url: e for e in endpoints}
        self._lanes = (
            *(_Lane(e.url, f"callcenter-{e.key}") for e in endpoints),
            _Lane(None, "callcenter-notify-unconfigured"),
        )
        self._owner = owner
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._timeout = timeout
        self._poll = poll
        self._batch = batch
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Deliver in background threads, one per lane."""
        for lane in self._lanes:
            thread = threading.Thread(target=self._run, args=(lane,), name=lane.name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop after the attempts in flight (their claims lapse if the process dies first)."""
        self._stop.set()
        deadline = time.monotonic() + self._timeout + 1
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._client.close()

    def run_once(self) -> int:
        """One pass of every lane, one after the other; how many rows were attempted."""
        return sum(self._pass(lane) for lane in self._lanes)

    def _pass(self, lane: _Lane) -> int:
        """Claim and attempt ``lane``'s due rows once; how many were attempted."""
        now = self._clock()
        until = now + timedelta(seconds=2 * self._timeout + 5)
        rows = self._outbox.claim(
            owner=self._owner,
            now=now,
            until=until,
            limit=self._batch,
            url=lane.url,
            other_than=() if lane.url is not None else tuple(self._endpoints),
        )
        for row in rows:
            self._attempt(row)
        return len(rows)

    def _run(self, lane: _Lane) -> None:
        while not self._stop.is_set():
            try:
                busy = self._pass(lane) > 0
            except Exception:  # a thread boundary: log it, and look again later
                logger.exception("notification pass failed", extra={"lane": lane.name})
                busy = False
            if not busy:
                self._stop.wait(self._poll)

    def _attempt(self, row: Notification) -> None:
        fields: dict[str, object] = {
            "event_id": row.event_id,
            "type": row.type,
            "call_id": row.call_id,
        }
        endpoint = self._endpoints.get(row.url)
        text = body(self._store, row) if endpoint is not None else None
        now = self._clock()
        if endpoint is None or text is None:
            reason = "no [[notify]] receiver has this url" if endpoint is None else "call gone"
            self._outbox.finish(row.id, owner=self._owner, status=FAILED, answer=reason, at=now)
            receiver = endpoint.key if endpoint is not None else metrics.UNCONFIGURED_RECEIVER
            metrics.notification_attempt(receiver, metrics.NOTIFICATION_DROPPED)
            logger.warning("notification dropped", extra={**fields, "reason": reason})
            return
        headers = signed_headers(endpoint.secret, event_id=row.event_id, at=now, body=text)
        started = time.perf_counter()
        answer = post(self._client, row.url, headers=headers, body=text, now=now)
        seconds = time.perf_counter() - started
        status = self._record(row, answer, fields)
        metrics.notification_attempt(endpoint.key, _RESULTS[status], seconds)

    def _record(self, row: Notification, answer: Answer, fields: dict[str, object]) -> str:
        """Store what ``answer`` means for ``row``; the row's new status."""
        now = self._clock()
        fields = {**fields, "answer": answer.text[:80], "attempts": row.attempts}
        if answer.delivered:
            status, next_at = DELIVERED, None
        elif answer.gone:
            status, next_at = FAILED, None
        else:
            next_at = self._backoff.next_at(
                row.attempts, now=now, created_at=row.created_at, retry_after=answer.retry_after
            )
            status = FAILED if next_at is None else PENDING
        self._outbox.finish(
            row.id, owner=self._owner, status=status, answer=answer.text, at=now, next_at=next_at
        )
        if status == DELIVERED:
            logger.info("notification delivered", extra=fields)
        elif status == FAILED:
            logger.warning("notification given up", extra=fields)
        else:
            logger.info("notification retry scheduled", extra={**fields, "next_at": str(next_at)})
        return status


# What an attempt came to, by the row's status after it, as the metric names it.
_RESULTS: Mapping[str, str] = {
    DELIVERED: metrics.NOTIFICATION_DELIVERED,
    PENDING: metrics.NOTIFICATION_RETRY,
    FAILED: metrics.NOTIFICATION_GIVEN_UP,
}
