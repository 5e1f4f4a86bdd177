"""The lease keeper of one process: renews its calls' leases, saves their state, takes over.

One :class:`LeaseKeeper` runs on the runtime's event loop, beside the calls, and never
blocks it: every store call runs in a thread, one at a time. Three loops:

- **renew**: every ``renew_every`` seconds, one statement renews the leases of every call
  held here; a call whose lease another process took is let go (its sideband closed,
  never hung up).
- **state**: every ``state_every`` seconds, the calls that began being held here since the
  last tick get the held calls' ttl on the lease their claim wrote (one statement for all),
  and the resume state of the calls whose session moved is written beside their leases
  (one statement). A process whose last working
  renewal is older than a lease (it was stopped, or swapped out) lets every call go,
  and no call acts on any input meanwhile: another process may hold them now.
- **takeover**: every ``scan_every`` seconds, or at once when PostgreSQL notifies a
  release (every second on SQLite, which cannot notify), expired leases are looked for
  and taken; the runtime reattaches each call and
  restores its session. Active calls from before leases existed get an expired lease at start.

Production timings keep a dead holder's calls reattached within 10 s: a lease lasts
``ttl`` (6 s) after its last renewal, and a taker looks every ``scan_every`` (2 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from callcenter.errors import StoreError
from callcenter.observability.logs import bind_call
from callcenter.store import wakeups
from callcenter.store.leases import CHANNEL, LeaseStore, TakenCall

__all__ = ["KeeperHost", "LeaseKeeper", "LeaseTimings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """The timings of leases, in seconds; production defaults keep takeover under 10 s."""

    ttl: float = 6.0  # a lease lasts this long after its last renewal
    renew_every: float = 2.0
    scan_every: float = 2.0  # expired leases are looked for this often (and on a NOTIFY)
    scan_unnotified: float = 1.0  # ...at most this long apart where no NOTIFY wakes (SQLite)
    state_every: float = 0.2  # the resume state of calls that moved is written this often
    ringing_bound: float = 30.0  # a call a dead claimer left ringing this long is resolved
    take_at_once: int = 50  # expired leases taken by one scan

    @classmethod
    def for_ttl(cls, ttl: float) -> LeaseTimings:
        """Timings scaled to a lease of ``ttl`` seconds (renewed and scanned every third)."""
        return cls(ttl=ttl, renew_every=ttl / 3, scan_every=ttl / 3)

    def scan_interval(self, notified: bool) -> float:
        """How long a taker waits between two looks (a drain's release wakes it if notified)."""
        return self.scan_every if notified else min(self.scan_every, self.scan_unnotified)


class KeeperHost(Protocol):
    """What the keeper asks of the runtime (on the event loop's thread)."""

    def held(self) -> list[str]: ...

    def states(self, call_ids: Collection[str]) -> dict[str, dict[str, Any]]: ...

    def let_go(self, call_id: str) -> None: ...

    def take_over(self, taken: TakenCall) -> None: ...

    @property
    def draining(self) -> bool: ...


class LeaseKeeper:
    """Keeps the leases of one process (its ``owner`` id, unique per process start)."""

    def __init__(
        self,
        leases: LeaseStore,
        *,
        owner: str,
        clock: Callable[[], datetime],
        timings: LeaseTimings,
    ) -> None:
        self.owner = owner
        self.timings = timings
        self._leases = leases
        self._clock = clock
        self._changed: set[str] = set()
        self._started: set[str] = set()
        self._lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: wakeups.Listener | None = None
        self._renewed_at: float | None = None  # when the last renewal that worked began
        self._store_down = False  # the last renewal failed: nobody can take calls either
        self._letting_go = False  # a lapse was seen: its calls are being let go

    @property
    def store(self) -> LeaseStore:
        """The leases table."""
        return self._leases

    def until(self, now: datetime) -> datetime:
        """When a lease renewed at ``now`` expires."""
        return now + timedelta(seconds=self.timings.ttl)

    def started(self, call_id: str) -> None:
        """The call began being held here: its claim's lease is renewed next tick (loop thread)."""
        self._started.add(call_id)

    def changed(self, call_id: str) -> None:
        """The call's session moved: write its state on the next tick (loop thread)."""
        self._changed.add(call_id)

    def lapsed(self) -> bool:
        """This process's leases may have expired (it stalled: stopped, swapped out).

        Its calls may be someone else's now, so none of them may act, even before a
        renewal tells. A store that is down is no lapse: nobody can take calls meanwhile.
        """
        renewed = self._renewed_at
        if renewed is None or self._store_down:
            return False
        return time.monotonic() - renewed > self.timings.ttl

    def wake(self) -> None:
        """Look for expired leases now (any thread)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)

    async def run(self, host: KeeperHost) -> None:
        """Keep leases until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._lock, self._wake = asyncio.Lock(), asyncio.Event()
        self._renewed_at = time.monotonic()
        if wakeups.supported(self._leases.engine):
            self._listener = wakeups.Listener(self._leases.engine, CHANNEL, self.wake)
            self._listener.start()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._every(self.timings.renew_every, self._renew, host))
                group.create_task(self._every(self.timings.state_every, self._save, host))
                group.create_task(self._scan_loop(host))
        finally:
            if self._listener is not None:
                await asyncio.to_thread(self._listener.stop)

    async def release(self, states: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Hand calls over: their last state written, their leases expired now."""
        for call_id in states:
            self._changed.discard(call_id)
        await self._store_call(
            "release", self._leases.release, states, owner=self.owner, now=self._clock()
        )

    # -- the loops ---------------------------------------------------------------------------

    async def _every(
        self, seconds: float, tick: Callable[[KeeperHost], Any], host: KeeperHost
    ) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await tick(host)
            except StoreError as exc:
                logger.warning("lease store unavailable", extra={"error": str(exc)})
            except Exception:  # a task boundary: the keeper must go on
                logger.exception("lease keeper failed")

    async def _renew(self, host: KeeperHost) -> None:
        started = time.monotonic()
        held = host.held()
        if not held:
            self._renewed_at = started
            return
        try:
            await self._renew_these(host, held)
        except StoreError:
            self._store_down = True
            raise
        self._store_down, self._renewed_at = False, started

    async def _renew_these(self, host: KeeperHost, call_ids: Collection[str]) -> None:
        """Renew the leases of ``call_ids``; let go of those another process holds now."""
        now = self._clock()
        renewed = await self._store_call(
            "renew", self._leases.renew, call_ids, owner=self.owner, now=now, until=self.until(now)
        )
        # A call that ended meanwhile lost its lease with its end: it is not lost, just over.
        for call_id in set(call_ids).difference(renewed).intersection(host.held()):
            with bind_call(call_id):
                logger.warning("lease lost", extra={"owner": self.owner})
            host.let_go(call_id)

    async def _save(self, host: KeeperHost) -> None:
        lapsed = self.lapsed()
        if lapsed and not self._letting_go:  # once per lapse, until a renewal ends it
            for call_id in host.held():
                with bind_call(call_id):
                    logger.warning("lease lapsed", extra={"reason": "this process stalled"})
                host.let_go(call_id)
        self._letting_go = lapsed
        started, self._started = self._started, set()
        if started and not lapsed and (still := started.intersection(host.held())):
            await self._renew_these(host, still)
        changed, self._changed = self._changed, set()
        states = host.states(changed)
        if states:
            await self._store_call("save", self._leases.save_states, states, owner=self.owner)

    async def _scan_loop(self, host: KeeperHost) -> None:
        assert self._wake is not None
        first = True
        while True:
            try:
                if first:
                    await self._store_call("adopt", self._leases.adopt_orphans, now=self._clock())
                    first = False
                if not host.draining and not self.lapsed():
                    await self._take(host)
            except StoreError as exc:
                logger.warning("lease store unavailable", extra={"error": str(exc)})
            except Exception:  # a task boundary: the keeper must go on
                logger.exception("lease takeover failed")
            self._wake.clear()
            try:
                async with asyncio.timeout(self.timings.scan_interval(self._listener is not None)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _take(self, host: KeeperHost) -> None:
        now = self._clock()
        ringing_before = now - timedelta(seconds=self.timings.ringing_bound)
        waiting = await asyncio.to_thread(
            self._leases.expired, now=now, ringing_before=ringing_before
        )
        if not waiting:
            return
        taken = await self._store_call(
            "take",
            self._leases.take,
            owner=self.owner,
            now=now,
            until=self.until(now),
            ringing_before=ringing_before,
            limit=self.timings.take_at_once,
        )
        for call in taken:
            if host.draining:  # taken while the drain began: hand it straight back
                await self.release({call.record.call_id: call.state})
                continue
            with bind_call(call.record.call_id):
                logger.info(
                    "call taken over",
                    extra={"from_owner": call.previous_owner, "takeovers": call.takeovers},
                )
                host.take_over(call)
        if len(taken) == self.timings.take_at_once and self._wake is not None:
            self._wake.set()  # more may wait: look again at once

    async def _store_call(
        self, what: str, function: Callable[..., Any], *args: Any, **kw: Any
    ) -> Any:
        """Run one store call in a thread, one at a time (a release never races a renewal)."""
        assert self._lock is not None, what
        async with self._lock:
            return await asyncio.to_thread(function, *args, **kw)
