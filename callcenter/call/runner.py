"""The executor of one call: its sideband, its tools, its REST actions and its records.

A :class:`CallRunner` runs on the runtime's event loop. It feeds its
:class:`~callcenter.call.session.CallSession` one input at a time (server events, tool results,
timers, REST results, the socket's fate, operator commands) and executes the actions the
session returns: client events go out on the socket, tools run in tasks (sync ones in the
runtime's thread pool), REFER and hang-up run in threads, records go to the
:class:`~callcenter.call.recorder.Recorder`.

The socket closes for many reasons. After our own REFER or hang-up, or with a normal close,
the call is over. A drop (1006, 1012...) is retried in place once by the SDK (our
``on_reconnecting`` decides), then by fresh attaches, waiting as the
:class:`~callcenter.call.reattach.ReattachPolicy` says until it gives up; a handshake
refused with a 4xx means the call is over. A call taken over from another process starts
from the actions of its restored session instead of a fresh start. Pending tools are cancelled
when the call ends, and one summary line is logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import openai
from openai.resources.realtime.realtime import (
    AsyncRealtimeConnection,
    AsyncRealtimeConnectionManager,
)
from openai.types.realtime import RealtimeServerEvent
from openai.types.websocket_reconnection import (
    ReconnectingEvent,
    ReconnectingOverrides,
    is_recoverable_close,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callcenter.call.actions import (
    Action,
    CancelTools,
    ControlDone,
    Escalated,
    Finish,
    HangUpCall,
    Input,
    Record,
    ReferCall,
    RunTool,
    SaveHandoff,
    Send,
    SetTimer,
    SocketClosed,
    SocketDropped,
    TimerFired,
    ToolDone,
)
from callcenter.call.departure import ATTEMPT_KINDS
from callcenter.call.latency import LatencyTracker
from callcenter.call.reattach import ReattachPolicy
from callcenter.call.recorder import Recorder
from callcenter.call.resume import ResumeState
from callcenter.call.server_events import use_fast_parsing
from callcenter.call.session import CallSession
from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.call.writes import Ended, Handoff, Latency, Usage
from callcenter.errors import CallApiError
from callcenter.observability import metrics
from callcenter.observability.logs import set_call
from callcenter.tools.registry import ToolRegistry
from callcenter.tools.run import run_tool

__all__ = ["CallActions", "CallRunner", "CallServices", "Connect"]

logger = logging.getLogger(__name__)

OnReconnecting = Callable[[ReconnectingEvent], ReconnectingOverrides | None]
Connect = Callable[[str, OnReconnecting], AsyncRealtimeConnectionManager]


class CallActions(Protocol):
    """The call actions a call needs (a subset of :class:`callcenter.control.CallControl`)."""

    def refer(self, call_id: str, target_uri: str) -> None: ...

    def hangup(self, call_id: str) -> None: ...


def _unchanged(call_id: str) -> None:
    """The default ``changed`` hook: nobody keeps the session's resume state."""


def _held() -> bool:
    """The default ``lapsed`` hook: no lease, so it never lapses."""
    return False


@dataclass(frozen=True, slots=True)
class CallServices:
    """What every call of a runtime shares."""

    recorder: Recorder
    control: CallActions
    connect: Connect
    clock: Callable[[], datetime]
    tools: ToolRegistry
    executor: concurrent.futures.Executor
    reattach: ReattachPolicy = ReattachPolicy()
    close_timeout: float = 1.0  # our close of the socket at the end of a call
    changed: Callable[[str], None] = _unchanged  # the session took an input (its state moved)
    lapsed: Callable[[], bool] = _held  # this process stalled past its leases: act no more
    monotonic: Callable[[], float] = time.monotonic  # arrival times, for the caller's waits


class CallRunner:
    """Holds one call until it is over; :meth:`run` is its task."""

    def __init__(
        self,
        session: CallSession,
        services: CallServices,
        *,
        first: list[Action] | None = None,
        latency: LatencyTracker | None = None,
    ) -> None:
        """``first``: the actions of a restored session, run instead of its ``start()``;
        ``latency``: the waits it measured so far."""
        self.session = session
        self.latency = latency or LatencyTracker(session.call.accepted_at)
        self._services = services
        self._first = first
        self._call_id = session.call.call_id
        self._inbox: asyncio.Queue[Input | RealtimeServerEvent] = asyncio.Queue()
        self._connection: AsyncRealtimeConnection | None = None
        self._outbox: list[str] = []  # client events waiting for a socket
        self._tasks: dict[str, asyncio.Task[None]] = {}  # tool runs by call_id
        self._control: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._dropped_at: float | None = None  # when the current drop began
        self.drops = 0

    def resume_state(self) -> ResumeState:
        """What another process needs to go on with this call, the waits measured included."""
        return dataclasses.replace(self.session.resume_state(), latency=self.latency.as_data())

    def submit(self, item: Input) -> None:
        """Feed an input from outside, such as an operator command (on the loop's thread)."""
        self._inbox.put_nowait(item)

    async def run(self) -> None:
        """Hold the call: attach, feed the session, execute its actions, until it is over."""
        set_call(self._call_id)
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader: asyncio.Task[None] | None = None
        changed, lapsed = self._services.changed, self._services.lapsed
        try:
            first = self._first
            await self._execute(first if first is not None else self.session.start())
            if not self.session.finished:
                reader = asyncio.create_task(self._hold_sideband())
            while not self.session.finished:
                item = await self._inbox.get()
                if lapsed():  # another process may hold the call now: leave it to them
                    logger.warning("call let go", extra={"reason": "its lease lapsed"})
                    break
                await self._execute(self.session.feed(item, loop.time()))
                changed(self._call_id)
        except asyncio.CancelledError:
            logger.info("call released", extra={"reason": "handed over or shutting down"})
            raise
        except Exception as exc:  # a task boundary: the call must not stay up unwatched
            logger.exception("call session failed", extra={"error": type(exc).__name__})
            await self._crashed(exc)
        finally:
            await self._stop(reader)
            self._log_summary(loop.time() - started)

    # -- executing actions -------------------------------------------------------------------

    async def _execute(self, actions: list[Action]) -> None:
        tool_started = False
        for action in actions:
            match action:
                case Send(event=event):
                    await self._send(json.dumps(event, separators=(",", ":")))
                case RunTool():
                    self._start_tool(action)
                    tool_started = True
                case CancelTools():
                    for task in self._tasks.values():
                        task.cancel()
                case ReferCall(uri=uri):
                    self._start_control("refer", uri)
                case HangUpCall():
                    self._start_control("hangup", None)
                case SetTimer(name=name, seconds=seconds):
                    self._set_timer(name, seconds)
                case Record(kind=kind, data=data):
                    self._record(kind, data)
                case Escalated():
                    self._escalated(action)
                case SaveHandoff():
                    self._save_handoff(action)
                case Finish():
                    self._finish(action)
        if tool_started:  # let the tool start (a sync one reach the pool) before queued events
            await asyncio.sleep(0)

    async def _send(self, data: str) -> None:
        connection = self._connection
        if connection is None:
            self._outbox.append(data)
            return
        try:
            await connection.send_raw(data)
        except (ConnectionClosed, openai.WebSocketConnectionClosedError, OSError):
            self._outbox.append(data)  # sent again after a reattach, if one comes

    def _start_tool(self, action: RunTool) -> None:
        task = asyncio.create_task(self._run_tool(action))
        self._tasks[action.call_id] = task
        self.latency.tool_started(action.call_id, self._services.monotonic())
        task.add_done_callback(lambda _: self._tool_over(action.call_id))

    def _tool_over(self, call_id: str) -> None:
        self._tasks.pop(call_id, None)
        self.latency.tool_finished(call_id, self._services.monotonic())

    async def _run_tool(self, action: RunTool) -> None:
        result = await run_tool(
            action.spec,
            action.arguments,
            timeout=self._services.tools.timeout_for(action.spec),
            executor=self._services.executor,
        )
        outcome = "timeout" if result.timed_out else "ok" if result.ok else "error"
        metrics.tool_ran(action.name, outcome, result.duration)
        ms = round(result.duration * 1000, 1)
        logger.info("tool done", extra={"tool": action.name, "result": outcome, "ms": ms})
        self._inbox.put_nowait(ToolDone(action.call_id, result))

    def _start_control(self, verb: Literal["refer", "hangup"], uri: str | None) -> None:
        task = asyncio.create_task(self._run_control(verb, uri))
        self._control.add(task)
        task.add_done_callback(self._control.discard)

    async def _run_control(self, verb: Literal["refer", "hangup"], uri: str | None) -> None:
        control = self._services.control
        try:
            if verb == "refer" and uri is not None:
                await asyncio.to_thread(control.refer, self._call_id, uri)
            else:
                await asyncio.to_thread(control.hangup, self._call_id)
        except CallApiError as exc:
            fields = {"verb": verb, "target": uri, "status": exc.status, "error": str(exc)}
            logger.warning("call action failed", extra=fields)
            self._inbox.put_nowait(ControlDone(verb, uri, exc.status, str(exc)))
            return
        except Exception as exc:  # a task boundary: the session must hear how it ended
            logger.exception("call action failed", extra={"verb": verb, "target": uri})
            self._inbox.put_nowait(ControlDone(verb, uri, None, type(exc).__name__))
            return
        logger.info("call action done", extra={"verb": verb, "target": uri})
        self._inbox.put_nowait(ControlDone(verb, uri))

    def _set_timer(self, name: str, seconds: float) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_later(seconds, self._fire, name)

    def _fire(self, name: str) -> None:
        self._timers.pop(name, None)
        self._inbox.put_nowait(TimerFired(name))

    def _record(self, kind: EventKind, data: Mapping[str, object]) -> None:
        payload = dict(data)
        self._services.recorder.event(self._call_id, kind, payload, self._services.clock())
        if kind in ATTEMPT_KINDS:  # one REFER ended: count it, and say so
            metrics.transfer_attempt(str(payload.get("result")))
            fields = {k: payload.get(k) for k in ("target", "result", "seconds", "status")}
            logger.info("transfer attempt", extra=fields)
        if logger.isEnabledFor(logging.DEBUG):  # transcripts and arguments: DEBUG only
            logger.debug("call event", extra={"kind": kind, "data": payload})

    def _escalated(self, escalated: Escalated) -> None:
        metrics.escalation(escalated.trigger)
        fields = {
            "trigger": escalated.trigger,
            "target": escalated.target,
            "ticket": escalated.ticket,
        }
        logger.info("call escalating", extra=fields)

    def _save_handoff(self, handoff: SaveHandoff) -> None:
        at = self._services.clock()
        write = Handoff(self._call_id, handoff.ticket, handoff.trigger, handoff.summary, at)
        self._services.recorder.write(write)

    def _heard(self, event: RealtimeServerEvent) -> None:
        """Time a server event as it arrives, for the caller's waits."""
        try:
            waits = self.latency.event(event, self._services.monotonic())
        except (AttributeError, TypeError):  # an event the SDK built without validating it:
            return  # the session, fed it next, decides what becomes of the call
        for measured in waits:
            metrics.caller_waited(self.session.call.route, measured.kind, measured.seconds)

    def _record_latency(self, at: datetime) -> None:
        for measured in self.latency.finish():
            metrics.caller_waited(self.session.call.route, measured.kind, measured.seconds)
        if self.latency.measured:
            self._services.recorder.write(Latency(self._call_id, self.latency.as_data(), at))

    def _finish(self, finish: Finish) -> None:
        recorder, call_id, at = self._services.recorder, self._call_id, self._services.clock()
        recorder.write(Usage(call_id, self.session.usage.as_data(), at))
        self._record_latency(at)
        recorder.write(Ended(call_id, finish.outcome, at, target=finish.target))
        metrics.call_outcome(self.session.call.route, finish.outcome)

    async def _crashed(self, exc: Exception) -> None:
        """The session raised: its state cannot be trusted, so hang the call up and record why."""
        recorder, call_id, at = self._services.recorder, self._call_id, self._services.clock()
        error = f"session: {type(exc).__name__}"
        recorder.write(Usage(call_id, self.session.usage.as_data(), at))
        self._record_latency(at)
        recorder.write(Ended(call_id, CallOutcome.FAILED, at, error=error))
        metrics.call_outcome(self.session.call.route, CallOutcome.FAILED)
        try:
            await asyncio.to_thread(self._services.control.hangup, call_id)
        except Exception as hangup_error:  # a task boundary: the call is over for us either way
            logger.warning(
                "hangup after crash failed",
                extra={"error": type(hangup_error).__name__, "detail": str(hangup_error)},
            )
            return
        logger.info("call hung up after crash", extra={"error": error})

    # -- the sideband ------------------------------------------------------------------------

    async def _hold_sideband(self) -> None:
        """Attach, pass events to the inbox, reattach after drops; report the socket's end."""
        loop = asyncio.get_running_loop()
        policy = self._services.reattach
        attempt = 0  # failed attaches since the drop began
        while True:
            code: int | None = None
            try:
                async with self._services.connect(self._call_id, self._on_reconnecting) as conn:
                    use_fast_parsing(conn)
                    self._connection, self._dropped_at = conn, None
                    attempt = 0
                    await self._flush_outbox(conn)
                    async for event in conn:
                        self._dropped_at = None
                        self._heard(event)
                        self._inbox.put_nowait(event)
                code = 1000  # closed normally: the call is over
            except InvalidStatus as exc:
                status = exc.response.status_code
                logger.info("sideband refused", extra={"status": status})
                code = 1000 if status < 500 else None
            except openai.WebSocketConnectionClosedError as exc:
                self._outbox[:0] = exc.unsent_messages
                code = _close_code(exc.__cause__)
            except ConnectionClosed as exc:
                code = _close_code(exc)
            except (OSError, TimeoutError) as exc:
                logger.info("sideband attach failed", extra={"error": str(exc)})
            except Exception:  # a task boundary: a bug here must not leave the call unheld
                logger.exception("sideband failed; reattaching")
            finally:
                self._connection = None
            if (code is not None and not is_recoverable_close(code)) or self.session.leaving:
                self._inbox.put_nowait(SocketClosed())
                return
            now = loop.time()
            dropped_at = (
                self._dropped_at if self._dropped_at is not None else self._dropped(now, code)
            )
            attempt += 1
            delay = policy.next_delay(attempt, now - dropped_at)
            if delay is None:
                logger.warning("sideband lost", extra={"reason": "no reattach in time"})
                self._inbox.put_nowait(SocketClosed(lost=True))
                return
            await asyncio.sleep(delay)
            metrics.sideband_reattach()

    def _on_reconnecting(self, event: ReconnectingEvent) -> ReconnectingOverrides | None:
        """The SDK's one reconnect in place; any further attempt is ours to make."""
        if event.attempt > 1 or self.session.leaving or self.session.finished:
            return {"abort": True}
        if self._dropped_at is None:
            self._dropped(asyncio.get_running_loop().time(), event.close_code)
        metrics.sideband_reattach()
        return None

    def _dropped(self, now: float, code: int | None) -> float:
        """A drop begins at ``now``: tell the session, return ``now``."""
        self._dropped_at = now
        self.drops += 1
        logger.warning("sideband dropped; reattaching", extra={"code": code})
        self._inbox.put_nowait(SocketDropped(code))
        return now

    async def _flush_outbox(self, connection: AsyncRealtimeConnection) -> None:
        """Send what waited for a socket; what cannot be sent waits for the next one."""
        pending, self._outbox = self._outbox, []
        for index, data in enumerate(pending):
            try:
                await connection.send_raw(data)
            except BaseException:
                self._outbox[:0] = pending[index:]
                raise

    async def _stop(self, reader: asyncio.Task[None] | None) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in (*self._tasks.values(), *self._control):
            task.cancel()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._services.close_timeout):
                    await connection.close()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    def _log_summary(self, seconds: float) -> None:
        session = self.session
        if not session.finished:
            return
        usage = session.usage
        outcome = session.outcome
        fields = {
            "route": session.call.route,
            "outcome": outcome,
            "status": outcome.status if outcome is not None else None,
            "seconds": round(seconds, 1),
            "trigger": session.trigger,
            "tools": session.tool_runs,
            "lines": session.transcript_lines,
            "attaches": session.attaches,
            "drops": self.drops,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
        }
        logger.info("call over", extra=fields)


def _close_code(exc: BaseException | None) -> int:
    """The close code a peer sent, 1006 when the connection was cut without one."""
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        return exc.rcvd.code
    return 1006
