"""`callcenter serve`: the controller under gunicorn with several workers, as in production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, Delivery, EmulatorThread, HangUp, Wait, WaitFor
from callcenter.store import Store
from tests import pg_cluster
from tests.harness import API_KEY, WEBHOOK_SECRET, GunicornController, wait_for

SUPPORT = "+18005550100"
HEARD = "output_audio_buffer.stopped"  # the greeting was played to the caller
# The loggers a call's webhook, session and call actions log to.
CALL_PATH = ("callcenter.intake.", "callcenter.call.", "callcenter.control")


@pytest.fixture
def served(
    emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[GunicornController]:
    """`callcenter serve` with two workers, wired to the emulator."""
    controller = GunicornController(controller_env, example_config_path(), workers=2)
    emulator.emulator.webhook_url = controller.webhook_url
    yield controller
    controller.stop()


def test_serve_answers_a_call_end_to_end(
    served: GunicornController, emulator: EmulatorThread, store_url: str
) -> None:
    """A call rings, gunicorn's worker accepts it, greets, and records the caller's hang-up."""
    call = emulator.place_call(to_number=SUPPORT, script=[WaitFor(HEARD), HangUp()])
    wait_for(lambda: call.state is CallState.ENDED, what="the call to end")
    with Store.open(store_url) as store:
        wait_for(
            lambda: (c := store.get_call(call.call_id)) is not None and c.status == "ended",
            what="the end to be recorded",
        )
        record = store.get_call(call.call_id)
    assert record is not None
    assert (record.route, record.outcome) == ("support", "hung_up_by_caller")
    assert any(e["type"] == "response.create" for e in call.client_events)


@pytest.mark.store_subject
def test_concurrent_copies_across_workers_accept_once(
    served: GunicornController, emulator: EmulatorThread
) -> None:
    """Eight concurrent copies of one delivery, spread over the workers, give one accept."""
    call = emulator.place_call(
        to_number=SUPPORT, script=[Wait(5)], delivery=Delivery(copies=8, concurrent=True)
    )
    wait_for(lambda: len(call.webhook_attempts) == 8, what="every copy to be answered")
    assert {a.status for a in call.webhook_attempts} == {200}
    assert [r.status for r in call.rest_requests if r.verb == "accept"] == [200]


def test_serve_logs_json_lines_with_the_call_id(
    served: GunicornController, emulator: EmulatorThread
) -> None:
    """Every log line on the path of a call is JSON and carries its call_id as a key."""
    started = len(served.output)  # the lines from here on are about this one call
    call = emulator.place_call(to_number=SUPPORT, script=[WaitFor(HEARD), HangUp()])
    wait_for(
        lambda: any('"call over"' in line for line in served.output[started:]),
        what="the call's summary line",
    )
    lines = [json.loads(line) for line in served.output[started:] if line.startswith("{")]
    on_the_path = [
        line
        for line in lines
        if line["logger"].startswith(CALL_PATH)
        and line["msg"] != "webhook ignored"  # the Live API's announcement: a live_ id, no call_id
    ]
    assert {"webhook handled", "call over"} <= {line["msg"] for line in on_the_path}
    assert [line for line in on_the_path if line.get("call_id") != call.call_id] == []
    assert all(call.call_id not in line["msg"] for line in lines)  # a field, not in the text
    assert all(API_KEY not in line for line in served.output)


def test_sigterm_stops_serve_cleanly(served: GunicornController) -> None:
    """SIGTERM makes gunicorn stop its workers and exit 0."""
    assert httpx.get(served.url + "/healthz").status_code == 200
    assert served.stop() == 0


def test_serve_refuses_an_invalid_config(controller_env: dict[str, str], tmp_path: Path) -> None:
    """A bad config stops `serve` before it listens, with the file, key and reason."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\nmax_concurrent_calls = "many"\n[[routes]]\nname = "x"\n')
    with pytest.raises(AssertionError) as failed:
        GunicornController(controller_env, bad)
    assert "bad.toml:2: limits.max_concurrent_calls" in str(failed.value)


# -- readiness ----------------------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[pg_cluster.PrivateCluster]:
    """A private PostgreSQL cluster this test may stop, removed after it."""
    yield from pg_cluster.module_cluster()


def test_readiness_names_no_path_when_ready(served: GunicornController) -> None:
    """/readyz is 200 with its checks, and without the config path it used to show."""
    ready = httpx.get(served.url + "/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "ready": True, "checks": {"store": "ok"}},
    )
    assert str(example_config_path()) not in ready.text


def test_readiness_names_an_unreachable_store_without_its_internals(
    cluster: pg_cluster.PrivateCluster, emulator: EmulatorThread, tmp_path: Path
) -> None:
    """Database stopped: /readyz 503 `store: unreachable`, no host, port or name; back after."""
    url = cluster.new_database()
    database = url.rsplit("/", 1)[1]
    env = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPENAI_BASE_URL": emulator.base_url,
        "CALLCENTER_DATABASE_URL": url,
        "CALLCENTER_DATA_DIR": str(tmp_path / "data"),
    }
    controller = GunicornController(env, example_config_path(), workers=1)
    try:
        cluster.stop()

        def answer() -> httpx.Response:
            return httpx.get(controller.url + "/readyz", timeout=10)

        wait_for(lambda: answer().status_code == 503, what="readiness to fail")
        body = answer().json()
        assert (body["ready"], body["checks"], body["error"]["code"]) == (
            False,
            {"store": "unreachable"},
            "store_unreachable",
        )
        for internal in (database, str(cluster.port), "127.0.0.1", "psycopg", "config"):
            assert internal not in json.dumps(body), internal
        wait_for(
            lambda: any('"msg": "not ready"' in line and str(cluster.port) in line
                        for line in controller.output),
            what="the detail in the log",
        )  # fmt: skip
        cluster.start()
        wait_for(lambda: answer().status_code == 200, timeout=20, what="readiness to return")
    finally:
        controller.stop()
