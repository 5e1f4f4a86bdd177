"""Notification lanes: one receiver down or slow delays only its own events, and every
attempt is counted in Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcenter.call.vocabulary import CallOutcome
from callcenter.notify.config import Endpoint
from callcenter.notify.worker import DeliveryWorker
from callcenter.observability import metrics
from callcenter.store import Store
from callcenter.store.outbox import DELIVERED, FAILED, OutboxStore
from tests.harness import wait_for
from tests.notify_support import SECRET, SECRET_ENV, Receiver, receiver
from tests.test_store import claim, new_call

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run


def endpoint(got: Receiver, index: int) -> Endpoint:
    return Endpoint(
        url=got.url,
        secret_env=SECRET_ENV,
        events=("call.ended",),
        key=f"notify[{index}]",
        secret=SECRET,
    )


@pytest.fixture
def two_receivers(store_url: str) -> Iterator[tuple[Store, Receiver, Receiver]]:
    """A store whose events go to two live receivers, the first one stalled."""
    with receiver() as stalled, receiver() as healthy:
        urls = [stalled.url, healthy.url]
        store = Store.open(store_url, subscribers=lambda event_type, route: urls)
        store.migrate()
        stalled.open.clear()
        yield store, stalled, healthy
        store.close()


def reject(store: Store, call_id: str) -> None:
    claim(store, new_call(call_id, f"wh_{call_id}"))
    store.record_outcome(call_id, outcome=CallOutcome.REJECTED, at=datetime.now(UTC))


def statuses(store: Store, url: str) -> list[str]:
    outbox = OutboxStore(store.engine, store.subscribers)
    return [row.status for row in outbox.list() if row.url == url]


def attempts(receiver_key: str, result: str) -> float:
    """The in-process counter of attempts to ``receiver_key`` that came to ``result``."""
    exposition, _ = metrics.exposition()
    for family in text_string_to_metric_families(exposition.decode()):
        if family.name != "callcenter_notification_attempts":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels == {
                "receiver": receiver_key,
                "result": result,
            }:
                return sample.value
    return 0.0


def test_a_stalled_receiver_holds_back_only_its_own_events(
    two_receivers: tuple[Store, Receiver, Receiver],
) -> None:
    """While one receiver hangs on its first POST, the other gets every event of its own."""
    store, stalled, healthy = two_receivers
    metrics.install()
    delivered_before = attempts("notify[1]", metrics.NOTIFICATION_DELIVERED)
    worker = DeliveryWorker(
        store,
        (endpoint(stalled, 0), endpoint(healthy, 1)),
        owner="me",
        clock=lambda: datetime.now(UTC),
        poll=0.05,
    )
    worker.start()
    try:
        for number in range(3):
            reject(store, f"rtc_lane_{number}")
        wait_for(
            lambda: statuses(store, healthy.url) == [DELIVERED] * 3,
            what="the healthy receiver's 3 events delivered",
        )
        assert len(healthy.of_type("call.ended")) == 3
        assert stalled.events == [], "the stalled receiver has answered nothing yet"
        assert attempts("notify[1]", metrics.NOTIFICATION_DELIVERED) == delivered_before + 3
        stalled.open.set()
        wait_for(lambda: len(stalled.of_type("call.ended")) == 3, what="the stalled one's 3")
    finally:
        worker.stop()


def test_events_for_a_receiver_no_longer_configured_are_given_up_and_counted(
    store_url: str,
) -> None:
    """A row whose URL left the config is failed with the reason, not left pending forever."""
    with receiver() as kept:
        gone = "https://removed.example/hooks"
        store = Store.open(store_url, subscribers=lambda event_type, route: [kept.url, gone])
        store.migrate()
        try:
            reject(store, "rtc_orphan")
            before = attempts(metrics.UNCONFIGURED_RECEIVER, metrics.NOTIFICATION_DROPPED)
            worker = DeliveryWorker(
                store, (endpoint(kept, 0),), owner="me", clock=lambda: datetime.now(UTC)
            )
            assert worker.run_once() == 2
            worker.stop()
            assert statuses(store, kept.url) == [DELIVERED]
            outbox = OutboxStore(store.engine, store.subscribers)
            (orphan,) = [row for row in outbox.list() if row.url == gone]
            assert (orphan.status, orphan.last_answer) == (
                FAILED,
                "no [[notify]] receiver has this url",
            )
            after = attempts(metrics.UNCONFIGURED_RECEIVER, metrics.NOTIFICATION_DROPPED)
            assert after == before + 1
        finally:
            store.close()
