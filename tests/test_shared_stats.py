"""The dashboards of a worker share one computation of the day's figures per refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.operators.services import SharedStats
from callcenter.operators.stats import Stats, summarize

DAY = datetime(2026, 12, 3, tzinfo=UTC)
NEXT_DAY = DAY + timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_window_is_computed_once_while_its_figures_are_fresh() -> None:
    asked: list[tuple[datetime, datetime]] = []

    def compute(since: datetime, until: datetime) -> Stats:
        asked.append((since, until))
        return summarize([], [], since=since, until=until)

    clock = Clock()
    shared = SharedStats(compute, keep=4.0, monotonic=clock)
    first = shared(since=DAY, until=NEXT_DAY)
    clock.now += 3.9
    assert shared(since=DAY, until=NEXT_DAY) is first
    assert asked == [(DAY, NEXT_DAY)]

    other_zone = DAY + timedelta(hours=5)
    shared(since=other_zone, until=other_zone + timedelta(days=1))  # its own window
    assert len(asked) == 2

    clock.now += 0.1  # 4 s after the first: computed again
    assert shared(since=DAY, until=NEXT_DAY) is not first
    assert len(asked) == 3
