"""Server-Sent Events of one call's stored events, as they are recorded.

The stream polls the store (so it sees events recorded by any worker or node), sends each
event as ``id``/``event``/``data``, a comment line as a heartbeat, and ends with an ``end``
event once the call is over and its last events are out, or when its lifetime runs out
(the client reconnects with ``Last-Event-ID`` and loses nothing).

An open stream holds one of its worker's threads, which webhooks need too: a worker keeps
at most ``CALLCENTER_MAX_STREAMS`` open (:class:`StreamSlots`, by default half the worker's
threads) and answers one more with 503 ``too_many_streams`` and ``Retry-After``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Response

from callcenter.call.vocabulary import LIVE_STATUSES
from callcenter.operators.http import error
from callcenter.operators.views import event_json
from callcenter.store import Store

__all__ = [
    "DEFAULT_MAX_STREAMS",
    "StreamSlot",
    "StreamSlots",
    "StreamTimings",
    "call_events_stream",
    "sse",
]

DEFAULT_MAX_STREAMS = 4  # half the 8 threads of a `callcenter serve` worker
RETRY_STREAM_AFTER = 5  # seconds


@dataclass(frozen=True, slots=True)
class StreamTimings:
    """How often the stream polls, beats, and how long it may live, in seconds."""

    poll: float = 0.25
    heartbeat: float = 2.0  # also how soon a stream whose client left gives its slot back
    lifetime: float = 600.0


class StreamSlot:
    """One stream's slot: given back once, whichever comes first of its last event or its
    connection closing."""

    def __init__(self, free: threading.BoundedSemaphore) -> None:
        self._free = free
        self._given = False
        self._lock = threading.Lock()

    def give(self) -> None:
        """Give the slot back (again: nothing)."""
        with self._lock:
            if self._given:
                return
            self._given = True
        self._free.release()


class StreamSlots:
    """At most ``limit`` streams open at once in this worker; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    def take(self) -> StreamSlot | None:
        """A slot for a new stream; None when every slot is taken."""
        return StreamSlot(self._free) if self._free.acquire(blocking=False) else None

    def refusal(self) -> Response:
        """The 503 for a stream past the cap."""
        response, status = error(
            503, "too_many_streams", f"This worker already serves {self.limit} streams; retry."
        )
        response.status_code = status
        response.headers["Retry-After"] = str(RETRY_STREAM_AFTER)
        return response


def sse(event: str, data: object, event_id: int | None = None) -> str:
    """One SSE message."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def call_events_stream(
    store: Store,
    call_id: str,
    *,
    after_id: int = 0,
    timings: StreamTimings = StreamTimings(),
    monotonic: Callable[[], float] = time.monotonic,
    ending: Callable[[], None] = lambda: None,
) -> Iterator[str]:
    """The SSE text of ``call_id``'s events after ``after_id``, until the call ends.

    ``ending`` is called just before the last event (``end`` or ``timeout``) is sent: a
    client that reads it and opens another stream finds this one's slot already given back.
    """
    started = last_beat = monotonic()
    yield ": stream of call events\n\n"
    while True:
        record = store.get_call(call_id)
        over = record is None or record.status not in LIVE_STATUSES
        for event in store.events(call_id, after_id=after_id):
            after_id = event.id
            yield sse(event.kind, event_json(event), event.id)
        now = monotonic()
        if over:
            status = record.status if record is not None else None
            outcome = record.outcome if record is not None else None
            ending()
            yield sse("end", {"call_id": call_id, "status": status, "outcome": outcome})
            return
        if now - started >= timings.lifetime:
            ending()
            yield sse("timeout", {"call_id": call_id, "last_id": after_id})
            return
        if now - last_beat >= timings.heartbeat:
            last_beat = now
            yield ": heartbeat\n\n"
        time.sleep(timings.poll)
