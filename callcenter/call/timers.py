"""The timers a call's session sets for itself, by name. Pure.

Beside the departure's timers (named by their keys: a line to be heard, the summary, a
target's answer), the session sets three kinds:

- ``max_length``: the route's ``max_minutes`` are up; the call escalates.
- ``slow:<response_id>``: the response's tools still run; the caller hears "one moment".
- ``silence:<n>``: the caller said nothing after a response. Only a route that escalates
  on silences under semantic VAD keeps it (semantic VAD has no ``idle_timeout_ms``, see
  :func:`callcenter.config.loader.silence_timer_seconds`); it counts as the API's idle
  timeout. :class:`SilenceTimer` arms one after each response and voids it when the
  caller starts to speak: only the latest still counts.
"""

from __future__ import annotations

from typing import Final

from callcenter.call.actions import SetTimer

__all__ = ["MAX_LENGTH", "SilenceTimer", "max_length", "slow", "slow_response"]

MAX_LENGTH: Final = "max_length"
_SLOW: Final = "slow:"
_SILENCE: Final = "silence:"


def max_length(seconds: float) -> SetTimer:
    """The timer that ends the call's allowed length in ``seconds``."""
    return SetTimer(MAX_LENGTH, seconds)


def slow(response_id: str, seconds: float) -> SetTimer:
    """The timer after which the caller hears that ``response_id``'s tools still run."""
    return SetTimer(f"{_SLOW}{response_id}", seconds)


def slow_response(name: str) -> str | None:
    """The response a ``slow:`` timer named ``name`` is for; None for any other timer."""
    return name.removeprefix(_SLOW) if name.startswith(_SLOW) else None


class SilenceTimer:
    """The call's own silence timer, after ``seconds`` (None: the route keeps none)."""

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._round = 0

    def arm(self) -> list[SetTimer]:
        """A response is done: the caller's silence is timed from now (if the route times it)."""
        if self._seconds is None:
            return []
        self._round += 1
        return [SetTimer(f"{_SILENCE}{self._round}", self._seconds)]

    def void(self) -> None:
        """The caller started to speak: the timer running, if any, no longer counts."""
        self._round += 1

    @staticmethod
    def owns(name: str) -> bool:
        """Whether the timer named ``name`` is a silence timer."""
        return name.startswith(_SILENCE)

    def latest(self, name: str) -> bool:
        """Whether the silence timer named ``name`` still counts (was neither voided nor
        followed by another)."""
        return name == f"{_SILENCE}{self._round}"
