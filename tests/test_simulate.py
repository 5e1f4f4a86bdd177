"""`callcenter simulate` over real loopback, its timeline, and `callcenter emulator`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from callcenter.cli.sim import simulate
from callcenter.config.loader import example_config_path
from callcenter.emulator import (
    CallState,
    Emulator,
    EmulatorThread,
    RestRequest,
    WebhookAttempt,
)
from callcenter.settings import Settings
from callcenter.simulation.checks import CheckResult
from callcenter.simulation.demo import SCENARIO_DIR, write_demo_config
from callcenter.simulation.scenario import parse_scenario
from callcenter.simulation.simulate import ScenarioResult, results_table, webhook_url
from callcenter.simulation.timeline import (
    CallOver,
    Moment,
    Placed,
    SidebandEvent,
    SocketClosed,
    interleave,
    render,
)
from callcenter.store import Store, default_sqlite_url
from callcenter.web.serve_process import free_port
from tests.harness import API_KEY, WEBHOOK_SECRET, InProcessController, wait_for

DENIED_BUT_EXPECTED_ACCEPTED = """\
name = "a denied caller expected to get through"
[call]
from = "+19005550111"
to = "+18005550100"
[expect]
decision = "accept"
"""


BUSY_BUT_ACCEPTED = """\
name = "busy expected, accepted"
timeout = 120
[call]
to = "+18005550100"
[expect]
rejected = 486
"""
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
SHIPPED = sorted(EXAMPLES.glob("*.toml"))
TRANSFERS = ("08-transfer-falls-back.toml", "09-transfer-fails-agent-resumes.toml")
LONG = os.environ.get("CALLCENTER_LONG_TESTS") == "1"


def run_simulate(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(simulate, list(args), env=env, catch_exceptions=False)


def rows(output: str) -> dict[str, str]:
    """The pass/fail table's rows, by scenario name."""
    table = output[output.index("scenario  ") :].splitlines()[2:]
    return {re.split(r"\s{2,}", row)[0]: row for row in table}


# -- against a controller of its own ----------------------------------------------------------


def check_default_config_run(result: Result, scenarios: list[Path]) -> None:
    """Every scenario passed under the demo's config, and the timeline shows the calls."""
    assert result.exit_code == 0, result.output
    assert result.output.startswith("config: the example config with limits.max_concurrent")
    table = rows(result.output)
    assert len(table) == len(scenarios)
    assert all(" PASS" in row for row in table.values()), result.output
    assert "controller  accepts: model gpt-realtime-2, voice marin" in result.output
    assert (
        'caller      says "Hi, I ordered a kettle last week. Where is my order?"' in result.output
    )
    assert "controller  refers the call to sip:billing@pbx.example.com" in result.output
    assert "caller      hangs up while it rings" in result.output
    assert 'agent       calls lookup_order(order_id="A-1042")' in result.output
    assert "controller  refers the call to tel:+14155550111" in result.output


def test_the_shipped_scenarios_without_a_transfer_pass_with_the_default_config() -> None:
    """`callcenter simulate` of the shipped scenarios but the two transfers (which wait out a
    desk's answer timeout), no --config: the demo's config is used and every one passes,
    whatever the hour (sales is closed today by the overlay)."""
    scenarios = [path for path in SHIPPED if path.name not in TRANSFERS]
    assert len(scenarios) == 7
    result = run_simulate(*map(str, scenarios), env={"CALLCENTER_CONFIG": None})
    check_default_config_run(result, scenarios)


@pytest.mark.skipif(not LONG, reason="long variant: set CALLCENTER_LONG_TESTS=1")
def test_the_shipped_scenarios_all_pass_with_the_default_config() -> None:
    """`callcenter simulate examples/scenarios`, no --config: all nine pass, the transfer
    that falls back and the one where the agent resumes included."""
    result = run_simulate(str(EXAMPLES), env={"CALLCENTER_CONFIG": None})
    check_default_config_run(result, SHIPPED)
    assert len(SHIPPED) == 9
    assert "controller  refers the call to sip:overflow@pbx.example.com" in result.output
    assert "controller  refer failed: 486" in result.output


def test_a_scenario_that_fails_exits_1_with_expected_and_actual(tmp_path: Path) -> None:
    """A wrong expectation gives exit 1 and a FAIL row naming both sides."""
    scenario = tmp_path / "denied.toml"
    scenario.write_text(DENIED_BUT_EXPECTED_ACCEPTED)
    result = run_simulate(str(scenario), "--config", str(example_config_path()))
    assert result.exit_code == 1, result.output
    row = rows(result.output)["a denied caller expected to get through"]
    assert re.search(r'0/1\s+FAIL\s+decision: expected "accept", got "reject"$', row), row


def test_a_wrong_decision_fails_at_once_saying_what_was_expected_and_what_happened(
    tmp_path: Path,
) -> None:
    """Expecting a 486 reject where the example config accepts: the failure reads "expected a
    486 reject, got an accept", and the call is hung up without waiting out its timeout."""
    scenario = tmp_path / "busy.toml"
    scenario.write_text(BUSY_BUT_ACCEPTED)
    result = run_simulate(str(scenario), "--config", str(example_config_path()))
    assert result.exit_code == 1, result.output
    assert (
        "decision: expected a 486 reject, got an accept: not waiting; hanging up" in result.output
    )
    assert "timed out" not in result.output
    row = rows(result.output)["busy expected, accepted"]
    assert re.search(r"FAIL\s+decision: expected a 486 reject, got an accept$", row), row


def test_a_bad_scenario_file_exits_2_with_the_message(tmp_path: Path) -> None:
    """An invalid scenario stops everything before any call, naming file, line and key."""
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[call]\nto = "+18005550100"\n[[steps]]\ntype = "say"\n')
    result = run_simulate(str(scenario))
    assert result.exit_code == 2
    assert f"Error: {scenario}:3: steps[0].text: required" in result.stderr
    assert "starting a controller" not in result.output


# -- against a running controller ---------------------------------------------------------------


@pytest.fixture
def running_controller(tmp_path: Path) -> Iterator[tuple[InProcessController, int]]:
    """A controller on loopback whose OpenAI is an emulator port nobody serves yet."""
    port = free_port()
    config = tmp_path / "callcenter.toml"
    config.write_text(example_config_path().read_text())
    env = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "CALLCENTER_DATABASE_URL": default_sqlite_url(tmp_path / "data"),
    }
    settings = Settings.from_env(env, config_path=config)
    with Store.open(settings.database_url) as store:
        store.migrate()
    controller = InProcessController(settings)
    yield controller, port
    controller.stop()


def test_simulate_drives_a_running_controller(
    running_controller: tuple[InProcessController, int],
) -> None:
    """With --controller only the emulator starts, on the port the controller points at."""
    controller, port = running_controller
    scenarios = [
        SCENARIO_DIR / name
        for name in (
            "01-support-answered.toml",
            "02-support-tool-and-human.toml",
            "03-billing-refer.toml",
            "04-deny-listed.toml",
            "07-hangs-up-while-ringing.toml",
        )
    ]
    result = run_simulate(
        *map(str, scenarios),
        "--controller",
        controller.url,
        "--emulator-port",
        str(port),
        env={"OPENAI_API_KEY": API_KEY, "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET},
    )
    assert result.exit_code == 0, result.output
    assert f"emulator at http://127.0.0.1:{port}/v1" in result.output
    assert all(" PASS" in row for row in rows(result.output).values())
    assert "starting a controller" not in result.output


def test_controller_mode_needs_the_controllers_key_and_secret() -> None:
    """Without OPENAI_API_KEY and OPENAI_WEBHOOK_SECRET, --controller is a usage error."""
    result = run_simulate(
        str(SCENARIO_DIR / "04-deny-listed.toml"),
        "--controller",
        "http://127.0.0.1:9",
        env={"OPENAI_API_KEY": None, "OPENAI_WEBHOOK_SECRET": None},
    )
    assert result.exit_code == 2
    assert "OPENAI_WEBHOOK_SECRET" in result.stderr


@pytest.fixture
def running_demo(tmp_path: Path) -> Iterator[tuple[InProcessController, EmulatorThread]]:
    """What `callcenter demo --keep` leaves running: an emulator delivering to a controller
    with the demo's config, both on loopback."""
    with EmulatorThread(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET) as emulator:
        env = {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "OPENAI_BASE_URL": emulator.base_url,
            "CALLCENTER_DATABASE_URL": default_sqlite_url(tmp_path / "data"),
        }
        settings = Settings.from_env(env, config_path=write_demo_config(tmp_path).path)
        with Store.open(settings.database_url) as store:
            store.migrate()
        controller = InProcessController(settings)
        emulator.emulator.webhook_url = controller.webhook_url
        try:
            yield controller, emulator
        finally:
            controller.stop()


def test_simulate_drives_a_running_emulator_and_its_controller(
    running_demo: tuple[InProcessController, EmulatorThread],
) -> None:
    """--controller with --emulator starts nothing and needs no key or secret: the running
    emulator places the calls, held calls and armed faults included, and they pass."""
    controller, emulator = running_demo
    scenarios = [
        SCENARIO_DIR / name
        for name in (
            "02-support-tool-and-human.toml",
            "06-busy-when-full.toml",
            "07-hangs-up-while-ringing.toml",
        )
    ]
    result = run_simulate(
        *map(str, scenarios),
        "--controller",
        controller.url,
        "--emulator",
        emulator.url,
        env={"OPENAI_API_KEY": None, "OPENAI_WEBHOOK_SECRET": None},
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"emulator at {emulator.url} (running), delivering to {controller.url}\n"
        "config: the running controller's own (no --config or overlay applies to it)"
    )
    table = rows(result.output)
    assert len(table) == 3
    assert all(" PASS" in row for row in table.values()), result.output
    assert "holding 2 live calls to +18005550100" in result.output
    assert "controller  accept failed: 404 (the call is gone)" in result.output  # the fault
    assert len(emulator.calls) == 1 + 3 + 1  # the running emulator's own records


def test_an_emulator_or_controller_that_does_not_answer_is_a_one_line_error(
    running_demo: tuple[InProcessController, EmulatorThread],
) -> None:
    """A URL where no emulator or controller answers, or an emulator that delivers
    elsewhere: one line naming which and why, exit 2, and no call placed."""
    controller, emulator = running_demo
    nobody = f"http://127.0.0.1:{free_port()}"
    scenario = str(SCENARIO_DIR / "04-deny-listed.toml")
    elsewhere = controller.url.replace("127.0.0.1", "localhost")
    for urls, message in (
        ((controller.url, nobody), f"the emulator at {nobody}: cannot connect"),
        ((nobody, emulator.url), f"the controller at {nobody}: no answer"),
        ((controller.url, controller.url), "answered 404 to GET /_emulator: not an emulator"),
        ((elsewhere, emulator.url), f"delivers its calls to {controller.webhook_url}, not to"),
    ):
        result = run_simulate(scenario, "--controller", urls[0], "--emulator", urls[1])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error: cannot drive ")
        assert message in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not emulator.calls


def test_emulator_mode_needs_a_controller() -> None:
    """--emulator alone is a usage error: the controller it delivers to must be named."""
    result = run_simulate(
        str(SCENARIO_DIR / "04-deny-listed.toml"), "--emulator", "http://127.0.0.1:9"
    )
    assert result.exit_code == 2
    assert "--emulator needs --controller" in result.stderr


def test_the_webhook_url_is_accepted_in_either_form() -> None:
    """A controller's base URL and its webhook URL lead to the same place."""
    assert webhook_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/webhooks/openai"
    assert webhook_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/webhooks/openai"
    assert webhook_url("http://h:1/webhooks/openai") == "http://h:1/webhooks/openai"


# -- the timeline and the table ---------------------------------------------------------------


def attempt(body: object, status: int | None = 200, at: float = 100.02) -> WebhookAttempt:
    error = None if status else "no answer within 5.0s"
    return WebhookAttempt("wh_1", "realtime.call.incoming", 1, 0, 0, status, error, 0.012, at, body)


def test_a_timeline_reads_like_the_call() -> None:
    """Each kind of moment becomes one line: when, who, what."""
    moments: list[Moment] = [
        Placed(100.0, "+18005550100", "+14155550123", "Ada"),
        RestRequest("accept", "rtc_1", {"model": "m", "audio": {"output": {"voice": "v"}}}, 200,
                    100.01),
        attempt({"decision": "accept", "route": "support", "outcome": "accepted"}),
        SidebandEvent(100.1, "openai", {"type": "session.created"}),
        SidebandEvent(100.1, "controller", {"type": "response.create",
                                            "response": {"instructions": "Say hi"}}),
        SidebandEvent(100.5, "openai", {"type": "response.output_audio_transcript.done",
                                        "transcript": "Hi!"}),
        SidebandEvent(101.0, "openai", {"type": "input_audio_buffer.dtmf_event_received",
                                        "event": "0"}),
        SidebandEvent(101.2, "openai", {"type": "response.function_call_arguments.done",
                                        "call_id": "c1", "name": "lookup", "arguments": "{}"}),
        SidebandEvent(101.3, "controller", {"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": "c1", "output": "shipped"}}),
        SidebandEvent(101.4, "openai", {"type": "response.done"}),
        CallOver(102.0, "ended", "caller"),
        SocketClosed(102.0),
    ]  # fmt: skip
    assert render(moments, 100.0) == [
        "    +0.00s  caller      dials +18005550100 from +14155550123 (Ada)",
        "    +0.01s  controller  accepts: model m, voice v",
        "    +0.02s  openai      webhook answered 200 in 12 ms: accept, route support, "
        "outcome accepted",
        "    +0.10s  controller  attached the sideband",
        '    +0.10s  controller  asks the agent: "Say hi"',
        '    +0.50s  agent       says "Hi!"',
        "    +1.00s  caller      presses 0",
        "    +1.20s  agent       calls lookup()",
        '    +1.30s  controller  sends the output of lookup: "shipped"',
        "    +2.00s  caller      hangs up",
        "    +2.00s  openai      sideband closed",
    ]


def test_failed_deliveries_and_requests_say_what_went_wrong() -> None:
    """A webhook without an answer and a refused accept are shown as such."""
    moments: list[Moment] = [
        attempt(None, status=None),
        RestRequest("accept", "rtc_1", {}, 404, 100.5),
        CallOver(100.3, "missed", "caller"),
    ]
    assert render(moments, 100.0) == [
        "    +0.02s  openai      webhook got no answer: no answer within 5.0s",
        "    +0.50s  controller  accept failed: 404 (the call is gone)",
        "    +0.30s  caller      hangs up while it rings",
    ]


def test_client_events_go_just_before_the_server_event_that_answers_them() -> None:
    """Events of both sides noticed together are put in causal order."""
    server = [
        {"type": "session.created"},
        {"type": "response.created"},
        {"type": "response.done"},
        {"type": "conversation.item.added"},
    ]
    client = [
        {"type": "response.create"},
        {"type": "conversation.item.create"},
        {"type": "session.update"},
    ]
    merged = [(e.sent_by, e.event["type"]) for e in interleave(server, client, 1.0)]
    assert merged == [
        ("openai", "session.created"),
        ("controller", "response.create"),
        ("openai", "response.created"),
        ("openai", "response.done"),
        ("controller", "conversation.item.create"),
        ("openai", "conversation.item.added"),
        ("controller", "session.update"),
    ]


def test_the_results_table_shows_the_first_failed_check() -> None:
    """One row per scenario; a failure names its check with expected and actual."""
    scenario = parse_scenario('name = "busy"\n[call]\nto = "+1"\n')
    passed = ScenarioResult(scenario, None, (CheckResult("decision", True, '"x"', '"x"'),))
    failed = ScenarioResult(
        scenario,
        None,
        (
            CheckResult("decision", True, '"reject"', '"reject"'),
            CheckResult("rejected", False, "486", "603"),
        ),
    )
    assert results_table([passed, failed]) == [
        "scenario  checks  result  first failed check",
        "--------  ------  ------  -------------------------------",
        "busy      1/1     PASS",
        "busy      1/2     FAIL    rejected: expected 486, got 603",
    ]


# -- the emulator keeps the controller's answer ---------------------------------------------


@pytest.fixture
async def answering_emulator() -> AsyncIterator[Emulator]:
    """An emulator whose webhooks go to a receiver answering JSON, then plain text."""
    bodies = [web.json_response({"decision": "reject"}), web.Response(text="x" * 5000)]

    async def answer(request: web.Request) -> web.Response:
        if b"live.transport.incoming" in await request.read():  # each call's Live announcement
            return web.json_response({"status": "ignored"})
        return bodies.pop(0)

    app = web.Application()
    app.router.add_post("/webhooks/openai", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/openai"
    emulator = Emulator(api_key="sk-answers", webhook_url=url)
    await emulator.start()
    yield emulator
    await emulator.stop()
    await runner.cleanup()


async def test_webhook_attempts_keep_the_start_of_the_answer(answering_emulator: Emulator) -> None:
    """A JSON answer is kept parsed; any other answer as its first 2 KiB of text."""
    first = answering_emulator.place_call()
    second = answering_emulator.place_call()
    await answering_emulator.wait_for(lambda: first.webhook_attempts and second.webhook_attempts)
    assert first.webhook_attempts[0].response_body == {"decision": "reject"}
    assert second.webhook_attempts[0].response_body == "x" * 2048
    assert first.state is CallState.RINGING


# -- `callcenter emulator` ----------------------------------------------------------------------


def test_the_emulator_command_prints_its_url_and_secret_then_serves_until_sigterm() -> None:
    """`callcenter emulator` says where it serves, its secret and timings; stops on SIGTERM."""
    port = free_port()
    secret = "whsec_ZW11bGF0b3ItY29tbWFuZC10ZXN0"
    process = subprocess.Popen(
        [sys.executable, "-m", "callcenter", "emulator", "--port", str(port),
         "--webhook-secret", secret, "--server-timings", "none", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its log lines
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        assert f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1\n" in "".join(lines), lines
        assert f"OPENAI_WEBHOOK_SECRET={secret}\n" in "".join(lines)
        assert "server timings: none (seed 7)\n" in "".join(lines)
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/_emulator/calls"), what="serving")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
