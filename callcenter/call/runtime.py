"""The hand-off point for accepted calls: one asyncio loop thread per worker, many calls.

Intake hands an accepted call over with :meth:`Runtime.start` and returns at once; the
runtime holds the call until it ends: a :class:`~callcenter.call.session.CallSession` decides,
a :class:`~callcenter.call.runner.CallRunner` attaches the sideband (the SDK's
``realtime.connect(call_id=…)``) and executes. The loop thread starts on first use, so in
a gunicorn worker it starts after the fork, never in the master. :meth:`Runtime.command`
passes an operator's command to a call held here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from callcenter.call.actions import OperatorCommand
from callcenter.call.departure import SessionTimings
from callcenter.call.recorder import CallStore, Recorder
from callcenter.call.runner import CallActions, CallRunner, CallServices, Connect, Reattach
from callcenter.call.session import CallSession, LiveCall
from callcenter.call.writes import Write
from callcenter.config.loader import Config
from callcenter.observability import metrics
from callcenter.tools.registry import ToolRegistry

__all__ = ["CallActions", "CallStore", "Connect", "LiveCall", "Runtime", "RuntimeTimeouts"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuntimeTimeouts:
    """Bounds, in seconds, on what the runtime waits for."""

    line_said: float = 10.0  # a handoff line or goodbye to finish playing
    summary: float = 5.0  # the model's handoff summary
    reattach_window: float = 30.0  # a dropped sideband is retried this long
    reattach_delay: float = 0.25  # the first wait before reattaching (doubles, up to 4 s)
    shutdown: float = 5.0


class Runtime:
    """Holds the calls this worker accepted."""

    def __init__(
        self,
        *,
        store: CallStore,
        control: CallActions,
        connect: Connect,
        clock: Callable[[], datetime],
        config: Config,
        tools: ToolRegistry | None = None,
        timeouts: RuntimeTimeouts | None = None,
        tool_threads: int = 32,
        spill_dir: Path | None = None,
    ) -> None:
        """``spill_dir`` keeps the store writes of a long outage on disk (see ``Recorder``)."""
        self._config = config
        self._timeouts = timeouts = timeouts or RuntimeTimeouts()
        self._recorder = Recorder(store, spill_dir=spill_dir)
        self._recorder.resume()  # replay what a process that died left on disk
        self._executor = concurrent.futures.ThreadPoolExecutor(
            tool_threads, thread_name_prefix="callcenter-tool"
        )
        self._services = CallServices(
            recorder=self._recorder,
            control=control,
            connect=connect,
            clock=clock,
            tools=tools or ToolRegistry((), config.tool_timeout),
            executor=self._executor,
            reattach=Reattach(timeouts.reattach_window, timeouts.reattach_delay),
        )
        self._timings = SessionTimings(line_said=timeouts.line_said, summary=timeouts.summary)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._calls: dict[str, concurrent.futures.Future[None]] = {}
        self._runners: dict[str, CallRunner] = {}

    def start(self, call: LiveCall) -> bool:
        """Start holding ``call``; False (and nothing done) if it is already held here."""
        with self._lock:
            if call.call_id in self._calls:
                return False
            loop = self._ensure_loop()
            runner = CallRunner(self._session(call), self._services)
            future = asyncio.run_coroutine_threadsafe(runner.run(), loop)
            self._calls[call.call_id] = future
            self._runners[call.call_id] = runner
            metrics.call_started()
        future.add_done_callback(lambda _: self._forget(call.call_id))
        return True

    def command(self, call_id: str, command: OperatorCommand) -> bool:
        """Pass an operator's command to the call; False if this worker does not hold it."""
        with self._lock:
            runner = self._runners.get(call_id)
            loop = self._loop
            if runner is None or loop is None:
                return False
            loop.call_soon_threadsafe(runner.submit, command)
        return True

    def record(self, write: Write) -> None:
        """Hand a store write about a call to this runtime's recorder (kept through outages)."""
        self._recorder.write(write)

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
        """Stop holding calls (their sessions are cancelled), write what they recorded, stop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            future = asyncio.run_coroutine_threadsafe(_cancel_all_tasks(), loop)
            try:
                future.result(timeout=self._timeouts.shutdown)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                logger.warning("runtime shutdown timed out with calls still held")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=self._timeouts.shutdown)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._recorder.close(timeout=self._timeouts.shutdown)

    def _session(self, call: LiveCall) -> CallSession:
        route = next((r for r in self._config.routes if r.name == call.route), None)
        return CallSession(
            call,
            route=route,
            config=self._config,
            tools=self._services.tools,
            timings=self._timings,
        )

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
            self._runners.pop(call_id, None)
        metrics.call_ended()


async def _cancel_all_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
