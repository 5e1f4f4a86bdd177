"""The hand-off point for accepted calls: one asyncio loop thread per worker, many calls.

Intake hands an accepted call over with :meth:`Runtime.start` and returns at once; the
runtime holds the call's sideband WebSocket (the SDK's ``realtime.connect(call_id=…)``)
until the call ends and records how it ended. The loop thread starts on first use, so in a
gunicorn worker it starts after the fork, never in the master.

This first runtime greets the caller, says a handoff line before a route's REFER, and
watches the socket to learn when the call is over; the conversation logic (tools,
escalation, transcripts) plugs in at :meth:`Runtime._converse`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import openai
from openai.resources.realtime.realtime import (
    AsyncRealtimeConnection,
    AsyncRealtimeConnectionManager,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callcenter._logging import set_call
from callcenter.errors import CallApiError, StoreError

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class CallStore(Protocol):
    """What the runtime records (a subset of :class:`callcenter.store.Store`)."""

    def mark_answered(
        self, call_id: str, *, status: str, outcome: str, target: str | None = None, at: datetime
    ) -> None: ...

    def mark_ended(self, call_id: str, *, outcome: str, at: datetime) -> None: ...

    def add_event(self, call_id: str, kind: str, data: dict[str, object], at: datetime) -> None: ...


class CallActions(Protocol):
    """The call actions the runtime needs (a subset of :class:`callcenter.control.CallControl`)."""

    def refer(self, call_id: str, target_uri: str) -> None: ...

    def hangup(self, call_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LiveCall:
    """An accepted call, as the runtime needs it."""

    call_id: str
    route: str | None
    greeting: str | None = None
    handoff: str | None = None  # said before transferring, for a refer route
    transfer_to: tuple[str, ...] = field(default=())  # URIs to REFER to, in order of preference


@dataclass(frozen=True, slots=True)
class RuntimeTimeouts:
    """Bounds, in seconds, on what the runtime waits for."""

    line_said: float = 10.0  # a handoff line to finish playing before REFER
    shutdown: float = 5.0


class Runtime:
    """Holds the sideband of every call this worker accepted."""

    def __init__(
        self,
        *,
        store: CallStore,
        control: CallActions,
        connect: Callable[[str], AsyncRealtimeConnectionManager],
        clock: Clock,
        timeouts: RuntimeTimeouts | None = None,
    ) -> None:
        self._store = store
        self._control = control
        self._connect = connect
        self._clock = clock
        self._timeouts = timeouts or RuntimeTimeouts()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._calls: dict[str, concurrent.futures.Future[None]] = {}

    def start(self, call: LiveCall) -> bool:
        """Start holding ``call``; False (and nothing done) if it is already held here."""
        with self._lock:
            if call.call_id in self._calls:
                return False
            loop = self._ensure_loop()
            future = asyncio.run_coroutine_threadsafe(self._hold(call), loop)
            self._calls[call.call_id] = future
        future.add_done_callback(lambda _: self._forget(call.call_id))
        return True

    def active_calls(self) -> list[str]:
        """The call_ids held by this runtime now."""
        with self._lock:
            return list(self._calls)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is held; True if that happened within ``timeout``."""
        with self._lock:
            pending = list(self._calls.values())
        done, not_done = concurrent.futures.wait(pending, timeout=timeout)
        return not not_done

    def shutdown(self) -> None:
        """Stop holding calls (their sessions are cancelled) and stop the loop thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(_cancel_all_tasks(), loop)
        try:
            future.result(timeout=self._timeouts.shutdown)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            logger.warning("runtime shutdown timed out with calls still held")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=self._timeouts.shutdown)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="callcenter-runtime", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _forget(self, call_id: str) -> None:
        with self._lock:
            self._calls.pop(call_id, None)

    async def _hold(self, call: LiveCall) -> None:
        set_call(call.call_id)
        if call.transfer_to and not call.handoff:
            await self._transfer(call)  # nothing to say: no need for the sideband
            return
        outcome = "hung_up_by_caller"
        try:
            async with self._connect(call.call_id) as connection:
                logger.debug("sideband attached call_id=%s route=%s", call.call_id, call.route)
                if call.transfer_to:
                    await self._say_handoff(connection, call)
                    await self._transfer(call)
                    await drain(connection, self._timeouts.line_said)
                    return
                if call.greeting:
                    await say(connection, call.greeting)
                outcome = await self._converse(connection, call)
        except InvalidStatus as exc:
            status = exc.response.status_code
            logger.info("sideband refused call_id=%s status=%d: call is over", call.call_id, status)
        except (ConnectionClosed, openai.WebSocketConnectionClosedError, OSError) as exc:
            logger.info("sideband lost call_id=%s reason=%s", call.call_id, type(exc).__name__)
        except asyncio.CancelledError:
            logger.info("sideband released call_id=%s (worker shutting down)", call.call_id)
            raise
        except Exception:
            logger.exception("sideband session failed call_id=%s", call.call_id)
            outcome = "failed"
        if call.transfer_to:
            return
        await self._record(self._store.mark_ended, call.call_id, outcome=outcome)
        logger.info("call over call_id=%s outcome=%s", call.call_id, outcome)

    async def _converse(self, connection: AsyncRealtimeConnection, call: LiveCall) -> str:
        """Follow the call until its socket closes; return the outcome."""
        async for _event in connection:
            pass
        return "hung_up_by_caller"

    async def _say_handoff(self, connection: AsyncRealtimeConnection, call: LiveCall) -> None:
        """Say the handoff line and wait, boundedly, until the caller has heard it."""
        assert call.handoff is not None
        await say(connection, call.handoff)
        if not await wait_until_said(connection, self._timeouts.line_said):
            logger.warning("handoff line not confirmed call_id=%s; transferring", call.call_id)

    async def _transfer(self, call: LiveCall) -> None:
        """REFER to each target in turn until one takes the call; hang up if none does."""
        for uri in call.transfer_to:
            try:
                await asyncio.to_thread(self._control.refer, call.call_id, uri)
            except CallApiError as exc:
                logger.warning("refer failed call_id=%s target=%s: %s", call.call_id, uri, exc)
                await self._record(
                    self._store.add_event,
                    call.call_id,
                    "refer_failed",
                    {"target": uri, "status": exc.status},
                )
                if exc.status in (404, 409):
                    break  # the call is gone or no longer ours: no target can take it
                continue
            await self._record(
                self._store.mark_answered,
                call.call_id,
                status="referred",
                outcome="referred",
                target=uri,
            )
            logger.info("call over call_id=%s outcome=referred target=%s", call.call_id, uri)
            return
        logger.error("no transfer target took the call call_id=%s; hanging up", call.call_id)
        try:
            await asyncio.to_thread(self._control.hangup, call.call_id)
        except CallApiError as exc:
            logger.warning("hangup failed call_id=%s: %s", call.call_id, exc)
        await self._record(self._store.mark_ended, call.call_id, outcome="failed")
        logger.info("call over call_id=%s outcome=failed", call.call_id)

    async def _record(self, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run a store write off the loop; a store failure is logged, never fatal to the call."""
        try:
            await asyncio.to_thread(write, *args, at=self._clock(), **kwargs)
        except StoreError:
            logger.exception("store write failed call_id=%s", args[0] if args else "?")


async def say(connection: AsyncRealtimeConnection, line: str) -> None:
    """Ask the model to say ``line`` to the caller, word for word."""
    await connection.response.create(
        response={"instructions": f"Say exactly this to the caller, and nothing else: {line}"}
    )


async def wait_until_said(connection: AsyncRealtimeConnection, bound: float) -> bool:
    """Wait, at most ``bound`` seconds, until the running response has been heard.

    That is ``output_audio_buffer.stopped`` once playback started, or ``response.done`` when
    no playback started (a transport without playback events, or a response with no audio).
    Returns False when the bound passes first or the socket closes.
    """
    playing = False
    try:
        async with asyncio.timeout(bound):
            async for event in connection:
                if event.type == "output_audio_buffer.started":
                    playing = True
                elif event.type == "output_audio_buffer.stopped" or (
                    event.type == "response.done" and not playing
                ):
                    return True
    except TimeoutError:
        return False
    return False


async def drain(connection: AsyncRealtimeConnection, bound: float) -> None:
    """Read and drop events until the socket closes, at most ``bound`` seconds.

    A socket whose events go unread cannot read the server's close frame either, so closing
    it would wait out the close timeout.
    """
    try:
        async with asyncio.timeout(bound):
            async for _event in connection:
                pass
    except (TimeoutError, ConnectionClosed, openai.WebSocketConnectionClosedError):
        pass


async def _cancel_all_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
