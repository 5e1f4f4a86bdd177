"""When to try a dropped sideband again, and when to give up. Pure.

The executor (:mod:`callcenter.call.runner`) counts its failed attaches since the drop and
the seconds since it began, and asks :meth:`ReattachPolicy.next_delay` how long to wait
before the next attempt: the first wait, doubled after every failure up to a ceiling,
until the window has passed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReattachPolicy"]


@dataclass(frozen=True, slots=True)
class ReattachPolicy:
    """How long a dropped sideband is retried, in seconds, and the backoff between tries."""

    window: float = 30.0
    first_delay: float = 0.25
    max_delay: float = 4.0

    def next_delay(self, attempt: int, elapsed: float) -> float | None:
        """The wait before attempt ``attempt + 1`` (``attempt`` ≥ 1 failed so far), or None.

        None once ``elapsed`` seconds since the drop reach the window: the call is lost.
        """
        if elapsed >= self.window:
            return None
        delay: float = self.first_delay * 2.0 ** max(attempt - 1, 0)
        return min(delay, self.max_delay)
