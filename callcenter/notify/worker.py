"""The delivery worker: one thread per serving process, sending due notifications.

Every process that serves delivers, so a node lost with events pending loses none: its
claims lapse and another process takes them. Each pass claims a few due rows
(``OutboxStore.claim``), signs and posts each, and records the answer with the next attempt's
time from the :class:`~callcenter.notify.backoff.Backoff`. Calls never wait on it: their
writes only add rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import httpx

from callcenter.notify.backoff import Backoff
from callcenter.notify.config import Endpoint
from callcenter.notify.delivery import Answer, post
from callcenter.notify.payload import body
from callcenter.notify.signing import signed_headers
from callcenter.store import Store
from callcenter.store.outbox import DELIVERED, FAILED, PENDING, Notification, OutboxStore

__all__ = ["DeliveryWorker"]

logger = logging.getLogger(__name__)


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
        self._owner = owner
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._timeout = timeout
        self._poll = poll
        self._batch = batch
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Deliver in a background thread."""
        self._thread = threading.Thread(target=self._run, name="callcenter-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the attempt in flight (its claim lapses if the process dies first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 1)
        self._client.close()

    def run_once(self) -> int:
        """Claim and attempt the due rows once; how many were attempted."""
        now = self._clock()
        until = now + timedelta(seconds=2 * self._timeout + 5)
        rows = self._outbox.claim(owner=self._owner, now=now, until=until, limit=self._batch)
        for row in rows:
            self._attempt(row)
        return len(rows)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() > 0
            except Exception:  # a thread boundary: log it, and look again later
                logger.exception("notification pass failed")
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
            logger.warning("notification dropped", extra={**fields, "reason": reason})
            return
        headers = signed_headers(endpoint.secret, event_id=row.event_id, at=now, body=text)
        answer = post(self._client, row.url, headers=headers, body=text, now=now)
        self._record(row, answer, fields)

    def _record(self, row: Notification, answer: Answer, fields: dict[str, object]) -> None:
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
