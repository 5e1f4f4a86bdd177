"""Notifications end to end: calls → outbox → signed POSTs to a real receiver on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from callcenter.call.vocabulary import CallOutcome
from callcenter.cli.main import main
from callcenter.config.loader import example_config_path, load_config, resolve_notify_secrets
from callcenter.emulator import EmulatorThread, HangUp, Wait
from callcenter.errors import ConfigError
from callcenter.notify.backoff import Backoff
from callcenter.notify.config import Endpoint
from callcenter.notify.worker import DeliveryWorker
from callcenter.store import Store
from callcenter.store.outbox import DELIVERED, FAILED, PENDING, Notification, OutboxStore
from tests.harness import InProcessController, wait_for
from tests.notify_support import SECRET, SECRET_ENV, dumps, notify_config, receiver
from tests.test_store import claim, new_call

pytestmark = pytest.mark.store_subject  # its PostgreSQL variants run in every run

StartController = Callable[..., InProcessController]

SUPPORT = "+18005550100"
BILLING = "+18005550142"
TOKEN = "tok-notify-test-0123456789"  # an admin's
VIEWER_TOKEN = "tok-notify-viewer-0123456789"
FAST = Backoff(first=0.05, cap=0.2)  # retries at once: the schedule is tested on its own


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def config_for(url: str) -> str:
    return example_config_path().read_text() + notify_config(url)


def test_an_ended_call_is_notified_once_signed_with_its_transcript(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """One signed call.ended per ended call; its delivery is shown to admins, not viewers."""
    with receiver() as got:
        controller = start_controller(
            config_for(got.url),
            notify_backoff=FAST,
            env={"CALLCENTER_OPERATOR_TOKENS": f"ada:{TOKEN}:admin,vera:{VIEWER_TOKEN}:viewer"},
        )
        call = emulator.place_call(to_number=SUPPORT, script=[Wait(0.3), HangUp()])
        wait_for(lambda: got.of_type("call.ended"), what="call.ended to arrive")
        event = got.of_type("call.ended")[0]
        assert event["data"]["call_id"] == call.call_id, dumps(event)
        assert event["data"]["outcome"] == "hung_up_by_caller"
        assert event["data"]["transcript"], "the greeting is in the transcript"
        assert event["id"].startswith("evt_")
        assert isinstance(event["created_at"], int)
        assert got.refused == 0
        outbox = controller.services.store
        rows = OutboxStore(outbox.engine, outbox.subscribers)
        wait_for(
            lambda: (
                [(r.type, r.status) for r in rows.list(call_id=call.call_id)]
                == [("call.ended", DELIVERED)]
            ),
            what="the row marked delivered",
        )
        answer = httpx.get(
            f"{controller.url}/api/v1/calls/{call.call_id}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        (delivery,) = answer.json()["deliveries"]
        assert (delivery["type"], delivery["status"], delivery["url"]) == (
            "call.ended",
            DELIVERED,
            got.url,
        )
        assert delivery["last_answer"] == "204"
        as_viewer = httpx.get(
            f"{controller.url}/api/v1/calls/{call.call_id}",
            headers={"Authorization": f"Bearer {VIEWER_TOKEN}"},
        )
        assert as_viewer.status_code == 200
        assert "deliveries" not in as_viewer.json()


def test_the_cli_lists_failed_deliveries_and_retries_them(
    one_rejected_call: tuple[Store, list[str]],
) -> None:
    """`notify list` shows a given-up delivery with its answer; `notify retry` revives it."""
    store, urls = one_rejected_call
    clock = Clock()
    with receiver() as got:
        urls.append(got.url)
        reject(store, at=clock.start)
        got.answers.append((410, {}, b"unsubscribed"))
        worker_for(store, got.url, clock).run_once()
        url = str(store.engine.url.render_as_string(hide_password=False))
        listed = CliRunner().invoke(main, ["notify", "list", "--database-url", url])
        assert listed.exit_code == 0, listed.output
        assert "failed" in listed.output
        assert "410 unsubscribed" in listed.output
        retried = CliRunner().invoke(main, ["notify", "retry", "--database-url", url])
        assert retried.output.strip() == "1 deliveries due again"
        assert only_row(store).status == PENDING


def test_a_rejected_call_gets_its_call_ended(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A call declined at the door (deny list) still gets exactly one call.ended."""
    with receiver() as got:
        start_controller(config_for(got.url), notify_backoff=FAST)
        call = emulator.place_call(from_number="+19005550111", to_number=SUPPORT)
        wait_for(lambda: got.of_type("call.ended"), what="call.ended to arrive")
        (event,) = got.of_type("call.ended")
        assert (event["data"]["call_id"], event["data"]["outcome"]) == (call.call_id, "rejected")


def test_a_referred_call_sends_call_transferred_and_one_call_ended(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A refer route's call reports its transfer and still ends exactly once."""
    with receiver() as got:
        start_controller(config_for(got.url), notify_backoff=FAST)
        call = emulator.place_call(to_number=BILLING)
        wait_for(lambda: got.of_type("call.ended"), what="call.ended to arrive")
        wait_for(lambda: got.of_type("call.transferred"), what="call.transferred to arrive")
        assert [e["data"]["call_id"] for e in got.events] == [call.call_id] * 2
        assert got.of_type("call.ended")[0]["data"]["status"] == "referred"


def test_an_escalation_queues_one_call_escalated_however_often_replayed(
    one_rejected_call: tuple[Store, list[str]],
) -> None:
    """record_handoff queues call.escalated with the ticket; a replay of it queues nothing."""
    store, urls = one_rejected_call
    urls.append("https://crm.example/hooks")
    claim(store, new_call("rtc_2", "wh_2"))
    at = datetime.now(UTC)
    for _ in range(2):
        store.record_handoff("rtc_2", ticket="T-1", trigger="tool", summary="wants a human", at=at)
    (row,) = OutboxStore(store.engine, store.subscribers).list(call_id="rtc_2")
    assert (row.type, row.data) == (
        "call.escalated",
        {"ticket": "T-1", "escalation_trigger": "tool", "summary": "wants a human"},
    )


def test_a_receiver_down_then_back_gets_every_event_exactly_once(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """Events queued while the receiver answers 503 arrive once each when it comes back."""
    with receiver() as got:
        got.down = True
        controller = start_controller(config_for(got.url), notify_backoff=FAST)
        calls = [
            emulator.place_call(from_number="+19005550111", to_number=SUPPORT) for _ in range(3)
        ]
        store = controller.services.store
        outbox = OutboxStore(store.engine, store.subscribers)
        wait_for(lambda: sum(r.attempts > 1 for r in outbox.list()) == 3, what="retries while down")
        got.down = False
        wait_for(lambda: len(got.events) >= 3, what="every event after the outage")
        wait_for(lambda: all(r.status == DELIVERED for r in outbox.list()), what="rows delivered")
        assert sorted(e["data"]["call_id"] for e in got.events) == sorted(c.call_id for c in calls)
        assert len(set(got.webhook_ids)) == len(got.webhook_ids) == 3


def test_events_pending_at_a_restart_are_delivered_by_the_next_process(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A controller stopped with events undelivered leaves them to the one started after."""
    with receiver() as got:
        got.down = True
        first = start_controller(config_for(got.url), notify_backoff=FAST)
        call = emulator.place_call(from_number="+19005550111", to_number=SUPPORT)
        store = first.services.store
        outbox = OutboxStore(store.engine, store.subscribers)
        wait_for(lambda: any(r.attempts >= 1 for r in outbox.list()), what="a failed attempt")
        first.stop()
        got.down = False
        start_controller(config_for(got.url), notify_backoff=FAST)
        wait_for(lambda: got.of_type("call.ended"), what="call.ended from the second process")
        assert [e["data"]["call_id"] for e in got.events] == [call.call_id]


# -- the worker against a store and a receiver, on an injected clock ------------------------


class Clock:
    """A clock the test moves by hand, from the real time (receivers check the signed time)."""

    def __init__(self) -> None:
        self.start = self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def one_rejected_call(store_url: str) -> Iterator[tuple[Store, list[str]]]:
    """A migrated store that queues every event for the URLs in the list it yields."""
    urls: list[str] = []
    store = Store.open(store_url, subscribers=lambda event_type, route: list(urls))
    store.migrate()
    yield store, urls
    store.close()


def worker_for(store: Store, url: str, clock: Clock) -> DeliveryWorker:
    endpoint = Endpoint(url=url, secret_env=SECRET_ENV, events=("call.ended",), secret=SECRET)
    backoff = Backoff(first=5.0, cap=60.0, horizon=timedelta(hours=26), random=lambda: 0.0)
    return DeliveryWorker(store, (endpoint,), owner="me", clock=clock, backoff=backoff, timeout=5)


def reject(store: Store, *, at: datetime, call_id: str = "rtc_1") -> None:
    claim(store, new_call(call_id, f"wh_{call_id}"))
    store.record_outcome(call_id, outcome=CallOutcome.REJECTED, at=at)


def only_row(store: Store) -> Notification:
    (row,) = OutboxStore(store.engine, store.subscribers).list()
    return row


def test_a_failed_attempt_is_retried_after_the_schedule_then_delivered(
    one_rejected_call: tuple[Store, list[str]],
) -> None:
    """A 500 keeps the event pending until its next time (5 s on), when it goes out."""
    store, urls = one_rejected_call
    clock = Clock()
    with receiver() as got:
        urls.append(got.url)
        reject(store, at=clock.start)
        got.answers.append((500, {}, b"oops"))
        worker = worker_for(store, got.url, clock)
        assert worker.run_once() == 1
        row = only_row(store)
        first_retry = clock.start + timedelta(seconds=5)
        assert (row.status, row.attempts, row.next_at) == (PENDING, 1, first_retry)
        assert row.last_answer == "500 oops"
        clock.now = clock.start + timedelta(seconds=4)
        assert worker.run_once() == 0
        clock.now = clock.start + timedelta(seconds=5)
        assert worker.run_once() == 1
        assert only_row(store).status == DELIVERED
        assert len(got.events) == 1
        assert len(set(got.webhook_ids)) == 1
        worker.stop()


@pytest.mark.parametrize(
    ("answer", "status", "last"),
    [
        ((410, {}, b"gone"), FAILED, "410 gone"),
        ((302, {"location": "https://elsewhere.example/"}, b""), PENDING, "302"),
        ((503, {"retry-after": "30"}, b""), PENDING, "503"),
    ],
    ids=["410-stops", "redirect-not-followed", "retry-after"],
)
def test_what_the_receiver_answers_decides_the_next_attempt(
    one_rejected_call: tuple[Store, list[str]],
    answer: tuple[int, dict[str, str], bytes],
    status: str,
    last: str,
) -> None:
    """410 gives up; a redirect is a failure (not followed); Retry-After pushes the retry out."""
    store, urls = one_rejected_call
    clock = Clock()
    with receiver() as got:
        urls.append(got.url)
        reject(store, at=clock.start)
        got.answers.append(answer)
        worker = worker_for(store, got.url, clock)
        worker.run_once()
        row = only_row(store)
        assert (row.status, row.last_answer) == (status, last)
        if answer[1].get("retry-after"):
            assert row.next_at == clock.start + timedelta(seconds=30)
        assert len(got.webhook_ids) == 1  # the redirect's target was never asked
        worker.stop()


def test_a_huge_answer_is_read_bounded(one_rejected_call: tuple[Store, list[str]]) -> None:
    """A receiver answering megabytes has only its first bytes read and recorded."""
    store, urls = one_rejected_call
    clock = Clock()
    with receiver() as got:
        urls.append(got.url)
        reject(store, at=clock.start)
        got.answers.append((500, {}, b"x" * 2_000_000))
        worker = worker_for(store, got.url, clock)
        worker.run_once()
        row = only_row(store)
        assert row.status == PENDING
        assert row.last_answer is not None
        assert len(row.last_answer) <= 500
        worker.stop()


def test_an_event_past_its_horizon_is_given_up(
    one_rejected_call: tuple[Store, list[str]],
) -> None:
    """An event still failing 26 hours after it was queued is marked failed, not retried."""
    store, urls = one_rejected_call
    clock = Clock()
    with receiver() as got:
        urls.append(got.url)
        reject(store, at=clock.start)
        got.down = True
        worker = worker_for(store, got.url, clock)
        clock.now = clock.start + timedelta(hours=26)
        worker.run_once()
        assert only_row(store).status == FAILED
        worker.stop()


def test_the_backoff_starts_fast_doubles_and_stops_at_its_cap() -> None:
    """First retry ≤ 10 s, then doubling with jitter below the base, never past the cap."""
    values = itertools.cycle([0.0, 0.5, 1.0])
    backoff = Backoff(random=lambda: next(values))
    assert backoff.delay(1) == 5.0
    assert backoff.delay(2) == 10.0 * 0.9
    assert backoff.delay(3) == 20.0 * 0.8
    assert backoff.delay(40, retry_after=10**9) == backoff.cap
    assert all(Backoff().delay(1) <= 10 for _ in range(50))
    total = sum(Backoff(random=lambda: 1.0).delay(n) for n in range(1, 40))
    assert total > 24 * 3600, "retries span a day"


def test_notify_test_sends_one_signed_event_to_a_receiver() -> None:
    """`notify test URL` posts a notify.test event the receiver verifies, and prints 204."""
    with receiver() as got:
        result = CliRunner().invoke(main, ["notify", "test", got.url, "--secret-env", SECRET_ENV])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"{got.url}: 204"
        assert [e["type"] for e in got.events] == ["notify.test"]


# -- start-up validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('url = "http://crm.example.com/x"\nsecret = "env:S"', "2: notify[0].url: must be https"),
        ('url = "https://crm.example.com/x"\nsecret = "whsec_abc"', "3: notify[0].secret"),
        (
            'url = "https://a.example/x"\nsecret = "env:S"\nevents = ["call.done"]',
            '4: notify[0].events[0]: unknown event "call.done"',
        ),
    ],
    ids=["http-not-loopback", "secret-not-env", "unknown-event"],
)
def test_a_bad_notify_table_fails_at_start_up_with_its_line(
    tmp_path: Path, table: str, message: str
) -> None:
    """A plain-http URL, an inline secret or an unknown event names its file, line and key."""
    example = example_config_path().read_text().rstrip("\n") + "\n"
    path = tmp_path / "c.toml"
    path.write_text(example + f"[[notify]]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line, rest = message.split(":", 1)
    assert f"{path}:{len(example.splitlines()) + int(line)}:{rest}" in str(caught.value)


def test_a_missing_env_secret_fails_at_start_up_with_its_line(tmp_path: Path) -> None:
    """A secret whose variable is unset stops the start with file:line and notify[0].secret."""
    example = example_config_path().read_text().rstrip("\n") + "\n"
    path = tmp_path / "c.toml"
    path.write_text(example + '[[notify]]\nurl = "https://a.example/x"\nsecret = "env:NOPE"\n')
    with pytest.raises(ConfigError) as caught:
        resolve_notify_secrets(load_config(path), {})
    line = len(example.splitlines()) + 3
    reason = "notify[0].secret: environment variable NOPE is not set"
    assert f"{path}:{line}: {reason}" in str(caught.value)
