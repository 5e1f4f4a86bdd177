"""The rate-limit snapshots of one call: which ``rate_limits.updated`` events are recorded. Pure.

The server sends ``rate_limits.updated`` as every response begins, far more often than
anyone reads them. :class:`RateLimitSnapshots` records the first, then one a minute at most,
unless a limit runs low (under a tenth of it left): that one is recorded at once.
"""

from __future__ import annotations

from typing import Final

from openai.types.realtime import RateLimitsUpdatedEvent

from callcenter.call.actions import Action, Record
from callcenter.call.vocabulary import EventKind

__all__ = ["RATE_LIMITS_EVERY", "RateLimitSnapshots"]

RATE_LIMITS_EVERY: Final = 60.0  # seconds between two recorded snapshots (unless low)


class RateLimitSnapshots:
    """The latest rate limits of a call, and when they were last recorded."""

    def __init__(self) -> None:
        self.latest: list[dict[str, object]] = []
        self._recorded_at: float | None = None

    def updated(self, event: RateLimitsUpdatedEvent, now: float) -> list[Action]:
        """New limits at ``now`` (monotonic seconds): the record to write, if one is due."""
        self.latest = [limit.model_dump(exclude_none=True) for limit in event.rate_limits]
        low = any(
            limit.limit and limit.remaining is not None and limit.remaining < limit.limit / 10
            for limit in event.rate_limits
        )
        last = self._recorded_at
        if last is not None and not low and now - last < RATE_LIMITS_EVERY:
            return []
        self._recorded_at = now
        return [Record(EventKind.RATE_LIMITS, {"limits": self.latest})]
