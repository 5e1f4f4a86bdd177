"""What the operator API and the console share, one per worker: built by the app factory.

Both blueprints read :class:`OperatorServices` from the app (``operator_services()``) and
import nothing from each other or from the app factory, which fills it in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import cast

from flask import current_app

from callcenter.call.actions import OperatorTransfer
from callcenter.call.runtime import Runtime
from callcenter.config.loader import Config
from callcenter.operators.actions import Outcome, audit_outcome, execute
from callcenter.operators.audit import AuditTrail
from callcenter.operators.auth import FailureLimiter, OperatorToken, TokenChecker
from callcenter.operators.commands import CommandPoller
from callcenter.operators.parsing import parse_command
from callcenter.operators.stats import Stats, summarize
from callcenter.operators.stream import StreamSlots, StreamTimings
from callcenter.operators.transfers import transfer_wait
from callcenter.store import Store
from callcenter.store.operators import OperatorStore
from callcenter.store.outbox import OutboxStore

__all__ = ["OPERATORS", "OperatorServices", "SharedStats", "operator_services"]

OPERATORS = "callcenter.operators"
SHARED_STATS_FOR = 4.0  # seconds: below the dashboards' 5 s refresh, so each tick is fresh


class SharedStats:
    """The figures of a window, computed at most once per ``keep`` seconds; thread-safe.

    Every open dashboard of a worker asks for the same day's figures every few seconds;
    they share one computation (one at a time: the others wait for it and take its result)
    instead of each reading the whole day's calls.
    """

    def __init__(
        self,
        compute: Callable[[datetime, datetime], Stats],
        *,
        keep: float = SHARED_STATS_FOR,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._keep = keep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._kept: dict[tuple[datetime, datetime], tuple[float, Stats]] = {}

    def __call__(self, *, since: datetime, until: datetime) -> Stats:
        """The figures of ``[since, until)``, at most ``keep`` seconds old."""
        with self._lock:
            now = self._monotonic()
            kept = self._kept.get((since, until))
            if kept is not None and now - kept[0] < self._keep:
                return kept[1]
            figures = self._compute(since, until)
            # Only windows asked for lately are kept: a day that has ended, or a zone no
            # dashboard uses any more, is forgotten.
            self._kept = {
                window: entry for window, entry in self._kept.items() if now - entry[0] < self._keep
            }
            self._kept[(since, until)] = (now, figures)
            return figures


class OperatorServices:
    """The store views, token checks, audit trail, command poller and stream slots of a worker."""

    def __init__(
        self,
        *,
        store: Store,
        runtime: Runtime,
        config: Config,
        tokens: tuple[OperatorToken, ...],
        clock: Callable[[], datetime],
        owner: str,
        max_streams: int,
        command_wait: float = 5.0,
        stream: StreamTimings | None = None,
    ) -> None:
        self.calls = store
        self.runtime = runtime
        self.config = config
        self.store = OperatorStore(store)
        self.outbox = OutboxStore(store.engine, store.subscribers)
        self.tokens = TokenChecker(tokens)
        self.limiter = FailureLimiter(self.store, clock)
        self.audit = AuditTrail(self.store, clock)
        self.clock = clock
        self.command_wait = command_wait
        self.stream = stream or StreamTimings()
        self.streams = StreamSlots(max_streams)
        self.poller = CommandPoller(runtime, self.store, owner=owner, clock=clock)
        self.shared_stats = SharedStats(lambda since, until: self.stats(since=since, until=until))

    def act(
        self,
        call_id: str,
        action: str,
        body: object,
        *,
        operator: str,
        client: str,
        await_transfer: bool = False,
    ) -> Outcome:
        """Parse, check, deliver and audit an operator's command; refusals are audited too.

        ``await_transfer``: answer a transfer once it is over (transferred or failed),
        waiting as long as its targets' answer timeouts allow.
        """
        parsed = parse_command(action, body, operator=operator, config=self.config)
        if isinstance(parsed, Outcome):
            audit_outcome(self.audit, operator, action, call_id, client, parsed)
            return parsed
        return execute(
            calls=self.calls,
            runtime=self.runtime,
            store=self.store,
            audit=self.audit,
            clock=self.clock,
            call_id=call_id,
            command=parsed,
            client=client,
            wait=self.command_wait,
            transfer_wait=(
                transfer_wait(self.config, parsed.target)
                if await_transfer and isinstance(parsed, OperatorTransfer)
                else None
            ),
        )

    def stats(self, *, since: datetime, until: datetime) -> Stats:
        """The dashboard's figures for the calls received in ``[since, until)``."""
        window = self.store.call_facts(since=since, until=until)
        return summarize(window, self.store.call_facts(live=True), since=since, until=until)


def operator_services() -> OperatorServices:
    """The operator services of the current app."""
    return cast(OperatorServices, current_app.extensions[OPERATORS])
