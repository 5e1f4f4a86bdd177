"""`callcenter demo`: the whole loop as a user runs it, its config overlay and its scenarios."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from callcenter.call.vocabulary import CallOutcome
from callcenter.config.loader import load_config
from callcenter.emulator import CallState, EmulatedCall, WebhookAttempt
from callcenter.intake import routing
from callcenter.simulation.checks import CheckResult
from callcenter.simulation.demo import (
    SCENARIO_DIR,
    demo_scenarios,
    summary_table,
    write_demo_config,
)
from callcenter.simulation.simulate import ScenarioResult
from callcenter.sip.invite import IncomingCall
from tests.harness import wait_for
from tests.takeover_support import LONG

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
# Not in the demo: they wait for answer timeouts (see test_simulate).
TRANSFER_SCENARIOS = ("08-transfer-falls-back.toml", "09-transfer-fails-agent-resumes.toml")
DEMO_TIMEOUT = 60
SAMPLES = (
    "support call answered",
    "support: order looked up, then a human",
    "billing handed to a person",
    "deny-listed caller declined",
    "sales after hours",
    "busy when full",
    "caller hangs up while ringing",
)


def demo_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "callcenter", "demo", *options]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_the_demo_runs_every_sample_call_and_exits_0() -> None:
    """`callcenter demo` plays each sample, prints what happened and a matching summary."""
    done = subprocess.run(
        demo_command(),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("config: the example config with limits.max_concurrent_calls = 2")
    for name in SAMPLES:
        assert re.search(rf"^{re.escape(name)}\s+.*\s+ok$", out, re.MULTILINE), name
    assert "run the demo with --keep" in out  # how to open the console
    assert "console's URL and a throwaway admin token" in out
    for line in (
        "controller  accepts: model gpt-realtime-2, voice marin",
        'agent       calls lookup_order(order_id="A-1042")',
        'controller  sends the output of lookup_order: {"found": true, "order_id": "A-1042", '
        '"status": "shipped"',
        'caller      says "Thanks. Can I talk to a human, please?"',
        'controller  escalates after the caller said "Thanks. Can I talk to a human, please?": '
        "asks the agent for a handoff summary, out of band",
        'agent       writes the summary: "Ada asked where order A-1042 is',
        "controller  asks the agent to say the handoff line: "
        '"Let me connect you with a colleague, one moment please."',
        "controller  refers the call to tel:+14155550111",
        "controller  rejects with 603",
        "controller  rejects with 480",
        "holding 2 live calls to +18005550100",
        "controller  rejects with 486",
        "controller  refers the call to sip:billing@pbx.example.com",
        "controller  accept failed: 404 (the call is gone)",
        "outcome caller_gone",
    ):
        assert line in out, line
    # the table shows the outcome the controller stored, as the console and API show it
    stored = {
        SAMPLES[0]: "completed",
        SAMPLES[1]: "transferred",
        SAMPLES[2]: "referred",
        SAMPLES[4]: "rejected",
        SAMPLES[6]: "caller_gone",
    }
    for name, outcome in stored.items():
        assert re.search(rf"^{re.escape(name)}\s+.*\s{outcome}\s+ok$", out, re.MULTILINE), name


@pytest.mark.skipif(not LONG, reason="long variant: set CALLCENTER_LONG_TESTS=1")
def test_demo_keep_serves_until_sigterm() -> None:
    """With --keep the controller keeps answering, says how to call it and how to play the
    scenarios against it (which then pass), and stops on SIGTERM."""
    process = subprocess.Popen(
        demo_command("--keep"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # log lines
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        lines.extend(process.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: any("curl -s -X POST" in line for line in lines),
            timeout=DEMO_TIMEOUT,
            what="the demo to keep serving",
        )
        text = "".join(lines)
        found = re.search(r"^  controller\s+(http://127\.0\.0\.1:\d+)$", text, re.MULTILINE)
        assert found, text
        controller = found.group(1)
        assert re.search(r"^  API key\s+sk-local-\w+", text, re.MULTILINE)
        assert re.search(r"^  webhook secret\s+whsec_\S+", text, re.MULTILINE)
        assert re.search(rf"^  console\s+{controller}/console\b", text, re.MULTILINE)
        token = re.search(r"^  operator token\s+(\S+)", text, re.MULTILINE)
        assert token, text
        calls = httpx.get(
            f"{controller}/api/v1/calls", headers={"Authorization": f"Bearer {token.group(1)}"}
        )
        assert calls.status_code == 200
        assert healthy(controller)
        command = re.search(
            rf"^  callcenter simulate --controller {controller} --emulator (http://\S+) "
            r"examples/scenarios$",
            text,
            re.MULTILINE,
        )
        assert command, text
        played = subprocess.run(
            [sys.executable, "-m", "callcenter", "simulate", "--controller", controller,
             "--emulator", command.group(1), str(EXAMPLES / "04-deny-listed.toml"),
             str(EXAMPLES / "06-busy-when-full.toml")],
            capture_output=True, text=True, timeout=DEMO_TIMEOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert played.returncode == 0, played.stdout + played.stderr
        assert played.stdout.count("-> PASS") == 2, played.stdout
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not healthy(controller)
    finally:
        if process.poll() is None:  # a failed check: SIGTERM, so the demo stops its controller
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)


def test_the_overlay_makes_busy_and_after_hours_reachable(tmp_path: Path) -> None:
    """The demo's config: a limit of 2 with 486 when full, and sales closed for a week."""
    late_evening_utc = datetime(2027, 3, 2, 3, 30, tzinfo=UTC)  # still March 1st in New York
    overlay = write_demo_config(tmp_path, now=late_evening_utc)
    config = load_config(overlay.path)
    assert config.limits.max_concurrent_calls == 2
    assert str(config.limits.when_full) == "reject:486"
    sales = next(route for route in config.routes if route.name == "sales")
    assert sales.hours is not None
    week = {date(2027, 3, day) for day in range(1, 8)}
    assert week <= sales.hours.closed_dates
    assert date(2027, 2, 28) not in sales.hours.closed_dates
    assert date(2027, 3, 8) not in sales.hours.closed_dates
    assert date(2026, 12, 25) in sales.hours.closed_dates
    assert "today (2027-03-01)" in overlay.changes
    monday_noon_ny = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
    call = IncomingCall.from_sip_headers(
        "rtc_1", [("From", "<sip:+14155550123@x>"), ("To", "<sip:+18005550199@x>")], None
    )
    decision = routing.decide(call, config, monday_noon_ny, 0)
    assert isinstance(decision, routing.Reject)
    assert decision.status_code == 480


def test_the_example_scenarios_are_copies_of_the_bundled_ones() -> None:
    """examples/scenarios holds the demo scenarios shipped in the package, and the transfers."""
    bundled = {path.name: path.read_bytes() for path in SCENARIO_DIR.glob("*.toml")}
    examples = {path.name: path.read_bytes() for path in EXAMPLES.glob("*.toml")}
    assert {name: examples[name] for name in bundled} == bundled
    assert sorted(set(examples) - set(bundled)) == list(TRANSFER_SCENARIOS)
    assert [scenario.name for scenario in demo_scenarios()] == list(SAMPLES)


def test_a_transfer_in_the_summary_names_where_the_call_went() -> None:
    """An accepted call handed to a person reads "accept, transferred to <target>"."""
    scenario = next(s for s in demo_scenarios() if s.name == SAMPLES[1])
    call = EmulatedCall(
        "rtc_1",
        "+1",
        "+2",
        state=CallState.REFERRED,
        refer_target="tel:+14155550111",
    )
    call.webhook_attempts.append(
        WebhookAttempt("wh", "t", 1, 0, 0, 200, None, 0.0, 0.0, {"decision": "accept"})
    )
    result = ScenarioResult(scenario, call, (CheckResult("referred_to", True, "x", "x"),))
    (row,) = summary_table([result], {"rtc_1": CallOutcome.TRANSFERRED})[2:]
    assert re.split(r"\s{2,}", row)[1:] == [
        "accept, transferred to tel:+14155550111",
        "accept, transferred to tel:+14155550111",
        "transferred",
        "ok",
    ]


def test_the_summary_shows_expected_and_got_for_each_call() -> None:
    """One row per call: expected, got, and whether they match."""
    scenario = next(s for s in demo_scenarios() if s.name == "busy when full")
    call = EmulatedCall("rtc_1", "+1", "+2", state=CallState.REJECTED, reject_code=603)
    call.webhook_attempts.append(
        WebhookAttempt("wh", "t", 1, 0, 0, 200, None, 0.0, 0.0, {"decision": "reject"})
    )
    result = ScenarioResult(scenario, call, (CheckResult("rejected", False, "486", "603"),))
    assert summary_table([result], {"rtc_1": CallOutcome.REJECTED}) == [
        "call            expected    got         stored outcome  ok",
        "--------------  ----------  ----------  --------------  --------",
        "busy when full  reject 486  reject 603  rejected        MISMATCH",
    ]


def test_no_demo_target_rings_a_demo_caller(tmp_path: Path) -> None:
    """Every target of the demo's config is a number or URI no demo caller calls from."""
    config = load_config(write_demo_config(tmp_path).path)
    callers = {s.call.from_number for s in demo_scenarios()}
    callers |= {s.hold.from_number for s in demo_scenarios() if s.hold is not None}
    targets = {target.uri.removeprefix("tel:") for target in config.targets.values()}
    assert callers
    assert not targets & callers
