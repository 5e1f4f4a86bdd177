"""`GET /metrics`: Prometheus metrics after emulator calls, in one process and under gunicorn."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcenter.config.loader import example_config_path
from callcenter.emulator import (
    CallState,
    Delivery,
    EmulatedCall,
    EmulatorThread,
    HangUp,
    RestFault,
    Say,
    SidebandFault,
    Wait,
    WaitFor,
)
from callcenter.emulator.webhooks import webhook_headers
from callcenter.observability import metrics
from callcenter.store import Store
from tests.harness import WEBHOOK_SECRET, GunicornController, InProcessController, wait_for

SUPPORT = "+18005550100"
DENIED_CALLER = "+19005550123"  # the example config's deny list: premium-rate numbers
SCREENED_OUT = {"route": metrics.NO_ROUTE, "outcome": "rejected"}  # screening is before routes
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of ``/metrics``, parsed with prometheus_client's own parser."""
    answer = httpx.get(url + "/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def counted(url: str, name: str, **labels: str) -> float:
    """One sample's value on a fresh scrape of ``url``."""
    return value(scrape(url), name, **labels)


def signed_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, age: int = 0) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed ``age`` seconds ago."""
    webhook_id = f"wh_metrics_{time.monotonic_ns()}"
    return webhook_headers(secret, webhook_id, int(time.time()) - age, body)


# -- in one process ---------------------------------------------------------------------------


@pytest.fixture
def controller(
    start_controller: Callable[..., InProcessController], emulator: EmulatorThread
) -> InProcessController:
    """The in-process controller (a plain registry: no multiprocess directory)."""
    assert not os.environ.get(metrics.MULTIPROC_DIR_VARIABLE)
    return start_controller()


def test_metrics_exposes_every_callcenter_family_with_help(
    controller: InProcessController,
) -> None:
    """/metrics lists each callcenter metric with its type and help text."""
    answer = httpx.get(controller.url + "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    expected = {
        "callcenter_calls": "counter",
        "callcenter_active_calls": "gauge",
        "callcenter_webhook_duration_seconds": "histogram",
        "callcenter_webhook_deliveries": "counter",
        "callcenter_webhook_verification_failures": "counter",
        "callcenter_control_duration_seconds": "histogram",
        "callcenter_sideband_reattaches": "counter",
        "callcenter_tool_duration_seconds": "histogram",
        "callcenter_greeting_seconds": "histogram",
        "callcenter_turn_seconds": "histogram",
        "callcenter_escalations": "counter",
        "callcenter_store_write_problems": "counter",
        "callcenter_notification_attempts": "counter",
        "callcenter_notification_duration_seconds": "histogram",
    }
    assert {name: families[name].type for name in expected} == expected
    assert all(families[name].documentation for name in expected)


def test_in_process_calls_are_counted_by_route_and_outcome(
    controller: InProcessController, emulator: EmulatorThread
) -> None:
    """A caller's hang-up and a screened-out caller each add one to their route and outcome."""
    before = scrape(controller.url)
    answered = emulator.place_call(to_number=SUPPORT, script=[Wait(0.05), HangUp()])
    denied = emulator.place_call(from_number=DENIED_CALLER, to_number=SUPPORT)
    wait_for(lambda: denied.state is CallState.REJECTED, what="the screened call's reject")
    hung_up = {"route": "support", "outcome": "hung_up_by_caller"}
    wait_for(
        lambda: (
            counted(controller.url, "callcenter_calls_total", **hung_up)
            > value(before, "callcenter_calls_total", **hung_up)
        ),
        what="the hang-up to be counted",
    )
    after = scrape(controller.url)
    assert answered.state is CallState.ENDED
    for labels in (hung_up, SCREENED_OUT):
        assert value(after, "callcenter_calls_total", **labels) == (
            value(before, "callcenter_calls_total", **labels) + 1
        )


def test_in_process_active_calls_rise_while_held_and_fall_after(
    controller: InProcessController, emulator: EmulatorThread
) -> None:
    """The active-calls gauge counts a held call and drops back when the caller hangs up."""
    before = counted(controller.url, "callcenter_active_calls")
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(30)])
    wait_for(
        lambda: counted(controller.url, "callcenter_active_calls") == before + 1,
        what="the held call to be counted",
    )
    emulator.caller_hangs_up(call.call_id)
    wait_for(
        lambda: counted(controller.url, "callcenter_active_calls") == before,
        what="the ended call to leave the gauge",
    )


def test_in_process_control_latency_is_observed_by_verb_and_status(
    controller: InProcessController, emulator: EmulatorThread
) -> None:
    """A 500 then a 200 on accept land in the control histogram under their statuses."""
    before = scrape(controller.url)
    emulator.faults.add(RestFault(verb="accept", status=500, times=1))
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(0.05), HangUp()])
    wait_for(lambda: call.state is CallState.ENDED, what="the call to end")
    after = scrape(controller.url)
    count = "callcenter_control_duration_seconds_count"
    for status in ("500", "200"):
        assert value(after, count, verb="accept", status=status) == (
            value(before, count, verb="accept", status=status) + 1
        )
    assert value(after, "callcenter_control_duration_seconds_sum", verb="accept", status="200") > (
        value(before, "callcenter_control_duration_seconds_sum", verb="accept", status="200")
    )


def test_in_process_deliveries_are_counted_by_result(
    controller: InProcessController, emulator: EmulatorThread
) -> None:
    """A handled call, its duplicate and ignored event types each count under their result."""
    before = scrape(controller.url)
    call = emulator.place_call(
        to_number=SUPPORT, script=[Wait(0.05), HangUp()], delivery=Delivery(copies=2)
    )
    emulator.send_webhook("batch.completed")
    wait_for(lambda: len(call.webhook_attempts) == 2, what="both copies to be answered")
    deliveries = "callcenter_webhook_deliveries_total"
    # Ignored: batch.completed, and the live.transport.incoming announcing the same call.
    expected = {"handled": 1, "duplicate": 1, "ignored": 2}
    wait_for(
        lambda: (
            counted(controller.url, deliveries, result="ignored")
            >= value(before, deliveries, result="ignored") + expected["ignored"]
        ),
        what="the ignored events to be counted",
    )
    after = scrape(controller.url)
    for result, more in expected.items():
        assert (
            value(after, deliveries, result=result)
            == value(before, deliveries, result=result) + more
        )
    histogram = "callcenter_webhook_duration_seconds_count"
    labels = {"event_type": "batch.completed", "result": "ignored"}
    assert value(after, histogram, **labels) == value(before, histogram, **labels) + 1


def test_in_process_sideband_reattach_is_counted(
    controller: InProcessController, emulator: EmulatorThread
) -> None:
    """A sideband dropped mid-call is reattached, and the reattach is counted."""
    before = counted(controller.url, "callcenter_sideband_reattaches_total")
    # Event 2 answers the greeting: by then the runtime only reads, and reading reattaches.
    emulator.faults.add(SidebandFault(drop_after_events=2, close_code=1006))
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(30)])
    wait_for(lambda: call.attaches >= 2, what="the sideband to reattach")
    assert counted(controller.url, "callcenter_sideband_reattaches_total") >= before + 1
    emulator.caller_hangs_up(call.call_id)


def test_recording_functions_for_tools_and_escalations_show_up(
    controller: InProcessController,
) -> None:
    """Tool runs and escalations recorded through the module appear on /metrics."""
    before = scrape(controller.url)
    metrics.tool_ran("lookup_order", "ok", 0.012)
    metrics.escalation("dtmf")
    after = scrape(controller.url)
    tool = {"tool": "lookup_order", "result": "ok"}
    assert value(after, "callcenter_tool_duration_seconds_count", **tool) == (
        value(before, "callcenter_tool_duration_seconds_count", **tool) + 1
    )
    assert value(after, "callcenter_escalations_total", trigger="dtmf") == (
        value(before, "callcenter_escalations_total", trigger="dtmf") + 1
    )


# -- the master's multiprocess directory ------------------------------------------------------


def test_private_multiprocess_dir_is_made_for_the_workers_and_removed(tmp_path: Path) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR, a fresh 0700 directory is made, exported and removed."""
    environ: dict[str, str] = {}
    prepared = metrics.prepare_multiprocess_dir(environ)
    try:
        assert prepared.private
        assert environ[metrics.MULTIPROC_DIR_VARIABLE] == str(prepared.path)
        assert prepared.path.stat().st_mode & 0o777 == 0o700
        assert list(prepared.path.iterdir()) == []
    finally:
        prepared.remove()
    assert not prepared.path.exists()


def test_operator_multiprocess_dir_is_kept_and_cleared_of_stale_files(tmp_path: Path) -> None:
    """A directory the operator set is used as is, minus the metric files of an earlier run."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "README").write_text("not a metric file")
    environ = {metrics.MULTIPROC_DIR_VARIABLE: str(directory)}
    prepared = metrics.prepare_multiprocess_dir(environ)
    prepared.remove()
    assert not prepared.private
    assert sorted(p.name for p in directory.iterdir()) == ["README"]


# -- under gunicorn, several workers ----------------------------------------------------------


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    """Where the served workers write their metric files (an operator-set directory)."""
    return tmp_path / "prometheus"


@pytest.fixture
def served(
    emulator: EmulatorThread, controller_env: dict[str, str], metrics_dir: Path
) -> Iterator[GunicornController]:
    """`callcenter serve` with two workers, wired to the emulator."""
    env = {**controller_env, metrics.MULTIPROC_DIR_VARIABLE: str(metrics_dir)}
    controller = GunicornController(env, example_config_path(), workers=2)
    emulator.emulator.webhook_url = controller.webhook_url
    yield controller
    controller.stop()


def test_served_calls_are_counted_across_workers(
    served: GunicornController, emulator: EmulatorThread, store_url: str
) -> None:
    """Calls answered by several workers, one since killed, add up whichever worker is scraped."""
    with Store.open(store_url) as store:
        first = _answered_calls(emulator, store, 3)
        killed = sorted(_owners(store, first))[0]
        os.kill(_pid(killed), signal.SIGKILL)  # its counts stay in its files
        second = _answered_calls(emulator, store, 3)
        assert _owners(store, second) - {killed}, "the calls after the kill went to no worker"
    denied = emulator.place_call(from_number=DENIED_CALLER, to_number=SUPPORT)
    wait_for(lambda: denied.state is CallState.REJECTED, what="the screened call's reject")
    hung_up = {"route": "support", "outcome": "hung_up_by_caller"}
    wait_for(
        lambda: counted(served.url, "callcenter_calls_total", **hung_up) == 6,
        what="every hang-up to be counted",
    )
    for _ in range(6):  # each scrape on a new connection, answered by either worker
        samples = scrape(served.url)
        assert value(samples, "callcenter_calls_total", **hung_up) == 6
        assert value(samples, "callcenter_calls_total", **SCREENED_OUT) == 1
        assert value(samples, "callcenter_webhook_deliveries_total", result="handled") == 7


def test_served_waits_are_observed_whichever_worker_held_the_call(
    served: GunicornController, emulator: EmulatorThread
) -> None:
    """Each call's greeting and turn land in the route's histograms, merged over the workers."""
    heard = WaitFor("output_audio_buffer.stopped")
    script = [heard, Say("Where is my order?"), heard, HangUp()]
    for _ in range(3):
        emulator.place_call(to_number=SUPPORT, script=script)
    wait_for(
        lambda: counted(served.url, "callcenter_turn_seconds_count", route="support") == 3,
        what="every turn to be observed",
    )
    samples = scrape(served.url)
    assert value(samples, "callcenter_greeting_seconds_count", route="support") == 3
    assert value(samples, "callcenter_greeting_seconds_sum", route="support") > 0


def test_served_verification_failures_are_counted_by_reason(served: GunicornController) -> None:
    """Unsigned, malformed, stale and forged deliveries each count under their reason."""
    body = b'{"type": "realtime.call.incoming"}'
    url = served.webhook_url
    unsigned = httpx.post(url, content=body)
    odd_bytes = {**signed_headers(body), "webhook-signature": "v1,\xe9t\xe9".encode("latin-1")}
    malformed = httpx.post(url, content=body, headers=odd_bytes)
    late = {**signed_headers(body), "webhook-timestamp": "yesterday"}
    bad_timestamp = httpx.post(url, content=body, headers=late)
    stale = httpx.post(url, content=body, headers=signed_headers(body, age=3600))
    forged = httpx.post(url, content=body, headers=signed_headers(body, secret="whsec_Zm9yZ2Vk"))
    answers = (unsigned, malformed, bad_timestamp, stale, forged)
    assert [a.status_code for a in answers] == [400, 400, 400, 401, 401]
    samples = scrape(served.url)
    for reason in metrics.VERIFICATION_FAILURES:
        assert value(samples, "callcenter_webhook_verification_failures_total", reason=reason) == 1
    assert value(samples, "callcenter_webhook_deliveries_total", result="invalid") == 5


def test_served_control_latency_is_observed(
    served: GunicornController, emulator: EmulatorThread
) -> None:
    """Accepting and rejecting calls observe the control histogram by verb and status."""
    answered = emulator.place_call(to_number=SUPPORT, script=[Wait(0.05), HangUp()])
    denied = emulator.place_call(from_number=DENIED_CALLER, to_number=SUPPORT)
    wait_for(
        lambda: answered.state is CallState.ENDED and denied.state is CallState.REJECTED,
        what="both calls to be over",
    )
    samples = scrape(served.url)
    count = "callcenter_control_duration_seconds_count"
    assert value(samples, count, verb="accept", status="200") == 1
    assert value(samples, count, verb="reject", status="200") == 1
    buckets = [
        (dict(labels)["le"], sample)
        for (name, labels), sample in samples.items()
        if name == "callcenter_control_duration_seconds_bucket" and dict(labels)["verb"] == "accept"
    ]
    assert ("+Inf", 1.0) in buckets
    assert {le for le, _ in buckets} >= {"0.001", "0.01", "0.1", "1.0"}


def test_served_active_calls_gauge_follows_a_held_call(
    served: GunicornController, emulator: EmulatorThread
) -> None:
    """The active-calls gauge goes to 1 while a worker holds a call, and back to 0 after."""
    assert counted(served.url, "callcenter_active_calls") == 0
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(30)])
    wait_for(
        lambda: counted(served.url, "callcenter_active_calls") == 1,
        what="the held call to be counted",
    )
    emulator.caller_hangs_up(call.call_id)
    wait_for(
        lambda: counted(served.url, "callcenter_active_calls") == 0,
        what="the ended call to leave the gauge",
    )


def test_served_dead_worker_leaves_the_active_calls_gauge(
    served: GunicornController, emulator: EmulatorThread, store_url: str
) -> None:
    """A worker killed while holding a call is marked dead: its call leaves the gauge."""
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(30)])
    wait_for(
        lambda: counted(served.url, "callcenter_active_calls") == 1,
        what="the held call to be counted",
    )
    with Store.open(store_url) as store:
        record = store.get_call(call.call_id)
    assert record is not None
    assert record.owner is not None
    os.kill(_pid(record.owner), signal.SIGKILL)
    wait_for(
        lambda: counted(served.url, "callcenter_active_calls") == 0,
        what="the dead worker's call to leave the gauge",
    )


def test_served_scrape_skips_a_metrics_file_a_worker_has_not_sized_yet(
    served: GunicornController, metrics_dir: Path
) -> None:
    """A worker's metric file exists empty for a moment (and for good if it is killed then):
    the scrape still answers, with every other worker's numbers (client_python#1199)."""
    (metrics_dir / "counter_4194303.db").touch()  # as a worker killed in that moment leaves it
    assert any(name.startswith("callcenter_") for name, _ in scrape(served.url))


def test_serve_clears_stale_metric_files_at_start(
    emulator: EmulatorThread, controller_env: dict[str, str], metrics_dir: Path
) -> None:
    """Counts left in an operator-set directory by an earlier run are not added to this run's."""
    env = {**controller_env, metrics.MULTIPROC_DIR_VARIABLE: str(metrics_dir)}
    first = GunicornController(env, example_config_path(), workers=1)
    httpx.post(first.webhook_url, content=b"{}")
    assert (
        counted(first.url, "callcenter_webhook_verification_failures_total", reason="unsigned") == 1
    )
    first.stop()
    second = GunicornController(env, example_config_path(), workers=1)
    try:
        assert (
            counted(second.url, "callcenter_webhook_verification_failures_total", reason="unsigned")
            == 0
        )
    finally:
        second.stop()


def test_serve_makes_a_private_metrics_dir_and_removes_it(
    emulator: EmulatorThread, controller_env: dict[str, str]
) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR, serve uses a fresh 0700 directory, gone after exit."""
    served = GunicornController(controller_env, example_config_path(), workers=2)
    try:
        assert counted(served.url, "callcenter_active_calls") == 0
        lines = [json.loads(line) for line in served.output if line.startswith("{")]
        directory = Path(next(line["metrics_dir"] for line in lines if line["msg"] == "serving"))
        assert directory.stat().st_mode & 0o777 == 0o700
        assert any(directory.glob("*.db"))
    finally:
        served.stop()
    assert not directory.exists()


def _answered_calls(emulator: EmulatorThread, store: Store, count: int) -> list[EmulatedCall]:
    """``count`` calls answered, then hung up by the caller, as the store records them."""
    calls = [
        emulator.place_call(to_number=SUPPORT, script=[Wait(0.05), HangUp()]) for _ in range(count)
    ]

    def ended(call: EmulatedCall) -> bool:
        record = store.get_call(call.call_id)
        return record is not None and record.status == "ended"

    wait_for(lambda: all(ended(call) for call in calls), what="the calls to end")
    return calls


def _pid(owner: str) -> int:
    """The process id in a store owner (``host:pid:token``)."""
    return int(owner.split(":")[1])


def _owners(store: Store, calls: list[EmulatedCall]) -> set[str]:
    """The workers (``host:pid:token``) that took ``calls``."""
    records = [store.get_call(call.call_id) for call in calls]
    return {r.owner for r in records if r is not None and r.owner is not None}
