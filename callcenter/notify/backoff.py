"""When to try a notification again: pure, with the randomness passed in.

The first retry comes within a few seconds, then the wait doubles up to a cap, each one
jittered (a random part of it) so that receivers coming back are not hit all at once. A
``Retry-After`` the receiver sent is honoured (up to the cap). Past the horizon, counted from
the event's creation, the event is given up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """The retry schedule: ``first`` after the first failure, doubling up to ``cap``."""

    first: float = 5.0  # seconds after the first failed attempt (≤ 10)
    cap: float = 3600.0  # the longest wait between two attempts
    horizon: timedelta = timedelta(hours=26)  # how long an event is retried, from its creation
    jitter: float = 0.2  # the random part of each wait (0.2: up to 20 % shorter)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, failures: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1 for the first)."""
        base = min(self.cap, self.first * 2.0 ** max(0, failures - 1))
        wait: float = base * (1 - self.jitter * self.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        return wait

    def next_at(
        self,
        failures: int,
        *,
        now: datetime,
        created_at: datetime,
        retry_after: float | None = None,
    ) -> datetime | None:
        """When to try again, or None when the event is past its horizon (give it up)."""
        at = now + timedelta(seconds=self.delay(failures, retry_after=retry_after))
        return None if at > created_at + self.horizon else at
