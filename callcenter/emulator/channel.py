"""The sideband sockets attached to one call, and how server events reach them.

``emit`` is synchronous: it puts the event on the queue of every attached socket, and one
writer task per socket sends the queue in order. So the order of ``server_events`` (the
record) is the order on the wire, and the code deciding what to send never awaits between
two events that belong together. Closing a socket is queued the same way: events emitted
before a hang-up still go out, then the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from callcenter.emulator.state import EmulatedCall
from callcenter.observability.logs import bind_call

logger = logging.getLogger(__name__)

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
ABNORMAL_CLOSURE = 1006
Event = dict[str, Any]


class Socket:
    """One attached WebSocket: its outgoing queue and, maybe, a planned drop."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        drop_after: int | None = None,
        drop_code: int = ABNORMAL_CLOSURE,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self._queue: asyncio.Queue[str | int] = asyncio.Queue()
        self.sent = 0
        self.drop_after = drop_after
        self.drop_code = drop_code
        self.writer: asyncio.Task[None] | None = None
        self.closing = False

    def put(self, text: str) -> None:
        """Queue one message."""
        self.sent += 1
        self._queue.put_nowait(text)

    def put_close(self, code: int) -> None:
        """Queue the end: a close frame with ``code``, or a cut TCP connection for 1006."""
        self.closing = True
        self._queue.put_nowait(code)

    async def pump(self) -> None:
        """Send the queue in order until the socket closes."""
        while True:
            item = await self._queue.get()
            if isinstance(item, int):
                await self._close(item)
                return
            try:
                await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return

    async def _close(self, code: int) -> None:
        if code == ABNORMAL_CLOSURE and self._transport is not None:
            self._transport.abort()
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code)


class Channel:
    """Every socket attached to one call; ``emit`` sends a server event to all of them."""

    def __init__(self, call: EmulatedCall, check: Callable[[Event], None] | None = None) -> None:
        self._call = call
        self._check = check
        self._sockets: list[Socket] = []
        self._writers: set[asyncio.Task[None]] = set()
        self.attached = asyncio.Event()

    def attach(self, socket: Socket) -> None:
        """Start sending to ``socket``."""
        socket.writer = asyncio.create_task(socket.pump())
        self._writers.add(socket.writer)
        socket.writer.add_done_callback(self._writers.discard)
        self._sockets.append(socket)
        self.attached.set()
        self._call.attached = True

    def detach(self, socket: Socket) -> None:
        """Stop sending to ``socket`` (it closed, or is being closed)."""
        if socket in self._sockets:
            self._sockets.remove(socket)
        if not self._sockets:
            self.attached.clear()
            self._call.attached = False

    def release(self, socket: Socket) -> None:
        """Forget ``socket`` once its connection is over (its writer ends too)."""
        self.detach(socket)
        if socket.writer is not None and not socket.closing:
            socket.writer.cancel()

    def emit(self, event: Event) -> None:
        """Send ``event`` to every attached socket; record it if any socket was attached."""
        if not self._sockets:
            return
        text = self._encode(event)
        for socket in list(self._sockets):
            self._deliver(socket, text)

    def send_to(self, socket: Socket, event: Event) -> None:
        """Send ``event`` to ``socket`` only (e.g. the ``session.created`` of a new attach)."""
        if socket in self._sockets:
            self._deliver(socket, self._encode(event))

    def _encode(self, event: Event) -> str:
        if self._check is not None:
            self._check(event)
        self._call.server_events.append(event)
        return json.dumps(event, separators=(",", ":"))

    def _deliver(self, socket: Socket, text: str) -> None:
        socket.put(text)
        if socket.drop_after is not None and socket.sent >= socket.drop_after:
            with bind_call(self._call.call_id):
                logger.info("sideband drop", extra={"code": socket.drop_code})
            self._close(socket, socket.drop_code)

    def close_all(self, code: int) -> None:
        """Close every socket with ``code`` (1006 cuts the connection) after what is queued."""
        for socket in list(self._sockets):
            self._close(socket, code)

    async def wait_closed(self) -> None:
        """Wait until every writer has sent its close (or its socket went away)."""
        if self._writers:
            await asyncio.wait(set(self._writers))

    def _close(self, socket: Socket, code: int) -> None:
        self.detach(socket)
        socket.put_close(code)
