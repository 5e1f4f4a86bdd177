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
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from callcenter.call.actions import Action, OperatorCommand
from callcenter.call.departure import SessionTimings
from callcenter.call.escalation import TransferTarget, transfer_chain
from callcenter.call.latency import LatencyTracker
from callcenter.call.leases import LeaseKeeper, LeaseTimings
from callcenter.call.reattach import ReattachPolicy
from callcenter.call.recorder import CallStore, Recorder
from callcenter.call.resume import ResumeState
from callcenter.call.runner import CallActions, CallRunner, CallServices, Connect
from callcenter.call.session import CallSession, LiveCall
from callcenter.call.vocabulary import CallStatus, DecisionKind
from callcenter.call.writes import Write
from callcenter.config.loader import Config
from callcenter.errors import StoreError
from callcenter.observability import metrics
from callcenter.observability.logs import bind_call
from callcenter.store.leases import LeaseStore, TakenCall
from callcenter.tools.registry import ToolRegistry

__all__ = ["Runtime", "RuntimeTimeouts"]

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
        leases: LeaseStore | None = None,
        owner: str = "",
        lease_timings: LeaseTimings | None = None,
    ) -> None:
        """``spill_dir`` keeps the store writes of a long outage on disk (see ``Recorder``);
        ``leases`` and ``owner`` (unique per process start) put held calls under leases."""
        self._config = config
        self._clock = clock
        self._keeper = (
            LeaseKeeper(leases, owner=owner, clock=clock, timings=lease_timings or LeaseTimings())
            if leases is not None
            else None
        )
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
            reattach=ReattachPolicy(timeouts.reattach_window, timeouts.reattach_delay),
            changed=self._keeper.changed if self._keeper is not None else _unchanged,
            lapsed=self._keeper.lapsed if self._keeper is not None else _never,
        )
        self._timings = SessionTimings(line_said=timeouts.line_said, summary=timeouts.summary)
        # Reentrant: a call whose run is already over when _hold adds its done-callback has
        # that callback (_forget) run at once, in this thread, with the lock still held.
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._calls: dict[str, concurrent.futures.Future[None]] = {}
        self._runners: dict[str, CallRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}  # on the loop's thread only
        self._draining = False
        self._hand_over: concurrent.futures.Future[None] | None = None  # the drain's, once begun

    @property
    def draining(self) -> bool:
        """A drain began: no call is taken or held here any more."""
        return self._draining

    def open(self) -> None:
        """Start the loop and the lease keeper now (a new process takes orphans over soon)."""
        with self._lock:
            self._ensure_loop()

    def start(self, call: LiveCall) -> bool:
        """Start holding ``call``; False (and nothing done) if it is already held here.

        No store write here: the claim wrote the call's lease for this process, and the lease
        keeper's next tick (within ``state_every``) gives it the held calls' ttl, in one
        statement with the other calls started since. While draining, the call is handed
        over at once instead (False).
        """
        with self._lock:
            if call.call_id in self._calls:
                return False
            if self._draining:
                handed = True
            else:
                handed = False
                self._hold(call.call_id, CallRunner(self._session(call), self._services))
        if handed:
            self._hand_over_now(call.call_id)
            return False
        return True

    def _refer_chain(self, decision: str, target: str | None) -> tuple[TransferTarget, ...]:
        """The transfer chain of a refer route's call, rebuilt from its stored target."""
        if decision != DecisionKind.REFER or target is None:
            return ()
        try:
            return transfer_chain(self._config.targets, target)
        except ValueError:  # the config changed since: the target is gone
            return ()

    def take_over(self, taken: TakenCall) -> None:
        """Hold a call whose holder is gone: reattach and go on from its resume state.

        A call its dead claimer left ringing is resolved instead: recorded as failed. Runs
        on the loop's thread (the lease keeper calls it).
        """
        record = taken.record
        if record.status == CallStatus.RINGING:
            asyncio.get_running_loop().create_task(self._unanswered(record.call_id))
            return
        state = ResumeState.from_data(taken.state)
        route = next((r for r in self._config.routes if r.name == record.route), None)
        if state is None:
            chain = self._refer_chain(record.decision, record.target)
            greeting = route.greeting if route is not None and not chain else None
            state = ResumeState(record.route, greeting=greeting, transfer_to=chain)
        call = LiveCall(
            record.call_id,
            state.route,
            greeting=state.greeting,
            handoff=state.handoff,
            transfer_to=tuple(state.transfer_to),
        )
        session = self._session(call)
        answered = record.answered_at or record.claimed_at
        elapsed = max((self._clock() - answered).total_seconds(), 0.0)
        first: list[Action] = session.resume(state, elapsed)
        if not state.attaches:
            first += session.start()
        with self._lock:
            if record.call_id in self._calls:  # still held here: our own lease had lapsed
                return
            latency = LatencyTracker.restored(state.latency)
            runner = CallRunner(session, self._services, first=first, latency=latency)
            self._hold(record.call_id, runner)

    def drain(self) -> None:
        """Hand every held call over: sideband closed (never hung up), lease released.

        There is one hand-over, begun by the first drain; a later or concurrent drain waits
        for that one. gunicorn's SIGTERM starts a drain while the worker's exit hook shuts
        the runtime down, which drains too: had that second drain begun a hand-over of its
        own, it would find the calls already let go, return at once, and the shutdown would
        then cancel the first hand-over before it released their leases.
        """
        with self._lock:
            self._draining = True
            if self._hand_over is None and self._loop is not None:
                self._hand_over = asyncio.run_coroutine_threadsafe(
                    self._hand_over_all(), self._loop
                )
            hand_over = self._hand_over
        if hand_over is None:
            return
        try:
            hand_over.result(timeout=self._timeouts.shutdown)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            logger.warning("drain timed out with calls still held")
        except StoreError as exc:
            logger.warning("leases not released", extra={"error": str(exc)})

    # -- what the lease keeper asks (on the loop's thread) -----------------------------------

    def held(self) -> list[str]:
        """The calls held here now."""
        return self.active_calls()

    def states(self, call_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The resume state of those of ``call_ids`` still held here."""
        with self._lock:
            runners = {cid: self._runners[cid] for cid in call_ids if cid in self._runners}
        return {
            cid: runner.resume_state().as_data()
            for cid, runner in runners.items()
            if not runner.session.finished
        }

    def let_go(self, call_id: str) -> None:
        """Stop holding a call another process took over (its sideband closed, no hang-up)."""
        task = self._tasks.get(call_id)
        if task is not None:
            task.cancel()

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
        """Hand the held calls over (see :meth:`drain`), write what they recorded, stop."""
        self.drain()
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            future = asyncio.run_coroutine_threadsafe(_cancel_all_tasks(), loop)
            try:
                future.result(timeout=self._timeouts.shutdown)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                logger.warning("runtime shutdown timed out")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=self._timeouts.shutdown)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._recorder.close(timeout=self._timeouts.shutdown)

    def _hold(self, call_id: str, runner: CallRunner) -> None:
        """Run ``runner`` on the loop (``self._lock`` held)."""
        loop = self._ensure_loop()
        future = self._submit(self._run(call_id, runner), loop)
        self._calls[call_id] = future
        self._runners[call_id] = runner
        metrics.call_started()
        future.add_done_callback(lambda _: self._forget(call_id))

    def _submit(
        self, run: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
    ) -> concurrent.futures.Future[None]:
        """Start a call's run on the loop thread; it may be over before this returns (a test
        makes sure it is, to check that ``_hold`` still goes on)."""
        return asyncio.run_coroutine_threadsafe(run, loop)

    async def _run(self, call_id: str, runner: CallRunner) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks[call_id] = task
        if self._keeper is not None:
            self._keeper.started(call_id)
        try:
            await runner.run()
        finally:
            self._tasks.pop(call_id, None)

    async def _hand_over_all(self) -> None:
        """Cancel every call's task (closing its sideband), then release their leases."""
        with self._lock:
            runners = dict(self._runners)
        tasks = [task for cid, task in self._tasks.items() if cid in runners]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        states: dict[str, dict[str, Any] | None] = {
            cid: runner.resume_state().as_data()
            for cid, runner in runners.items()
            if not runner.session.finished
        }
        if self._keeper is not None and states:
            await self._keeper.release(states)
            logger.info("calls handed over", extra={"calls": len(states)})

    def _hand_over_now(self, call_id: str) -> None:
        """Release the lease of a call answered during a drain, from the webhook's thread."""
        keeper = self._keeper
        if keeper is None:
            return
        try:
            keeper.store.release({call_id: None}, owner=keeper.owner, now=self._clock())
        except StoreError as exc:  # its lease expires by itself
            logger.warning("lease not released", extra={"error": str(exc)})
        with bind_call(call_id):
            logger.info("call handed over", extra={"reason": "draining"})

    async def _unanswered(self, call_id: str) -> None:
        keeper = self._keeper
        assert keeper is not None
        with bind_call(call_id):
            try:
                await asyncio.to_thread(
                    keeper.store.resolve_unanswered, call_id, owner=keeper.owner, now=self._clock()
                )
            except StoreError as exc:
                logger.warning("unanswered call not resolved", extra={"error": str(exc)})
                return
            logger.warning("call never answered", extra={"reason": "its claimer is gone"})

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
            if self._keeper is not None:
                asyncio.run_coroutine_threadsafe(self._keep_leases(self._keeper), loop)
        return self._loop

    async def _keep_leases(self, keeper: LeaseKeeper) -> None:
        try:
            await keeper.run(self)
        except asyncio.CancelledError:
            raise
        except Exception:  # a task boundary: calls go on, unleased, and it is said loudly
            logger.exception("lease keeper stopped")

    def _forget(self, call_id: str) -> None:
        with self._lock:
            self._calls.pop(call_id, None)
            self._runners.pop(call_id, None)
        metrics.call_ended()


def _unchanged(call_id: str) -> None:
    """No lease keeper: nobody keeps resume states."""


def _never() -> bool:
    """No lease keeper: no lease lapses."""
    return False


async def _cancel_all_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
