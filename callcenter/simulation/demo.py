"""``callcenter demo``: the whole loop on this machine, with no OpenAI account.

Starts the emulator of OpenAI's side and the controller (``callcenter serve``, SQLite in a
temporary directory, the example config with a small overlay), plays the bundled demo
scenarios with the emulator slowed down so that each timeline reads like a call, and prints
a summary. With ``keep`` both stay up afterwards (until Ctrl-C or SIGTERM) for calls placed
by hand through the emulator's control API.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import shlex
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import tomli_w

from callcenter.call.latency import latency_summary
from callcenter.call.vocabulary import CallOutcome
from callcenter.config.loader import example_config_path
from callcenter.emulator import REALISTIC_SERVER, EmulatorThread, Pacing
from callcenter.notify.receiver import Receiver
from callcenter.simulation.checks import controller_answer, emulator_outcome
from callcenter.simulation.emulators import InProcessEmulator
from callcenter.simulation.scenario import Scenario, load_scenario, scenario_files
from callcenter.simulation.simulate import (
    FINAL_STATES,
    POLL_INTERVAL,
    CallWatcher,
    Echo,
    ScenarioResult,
    Simulator,
    local_setup,
    sigterm_as_interrupt,
)
from callcenter.simulation.text import table
from callcenter.simulation.timeline import Timeline
from callcenter.store import Store

__all__ = [
    "DEMO_PACING",
    "ConfigOverlay",
    "demo_scenarios",
    "latency_table",
    "run_demo",
    "stored_outcomes",
    "summary_table",
    "write_demo_config",
]

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios" / "demo"
EXAMPLE_SCENARIOS = "examples/scenarios"  # the demo's scenarios and two transfers, in a checkout
MAX_CONCURRENT_CALLS = 2
WHEN_FULL = "reject:486"
CLOSED_ROUTE = "sales"
CLOSED_DAYS = 7  # from the demo's start: a `demo --keep` left running for days still holds
ANALYSED_ROUTE = "support"
NOTIFY_SECRET_ENV = "CALLCENTER_DEMO_NOTIFY_SECRET"
NOTIFY_WAIT = 20.0  # seconds the demo waits for its notifications after the calls
DEMO_ANALYSIS: dict[str, Any] = {
    "model": "gpt-5-mini",
    "summary": True,
    "success": "The caller got a delivery date for their order.",
    "extract": {"order_id": "string", "sentiment": ["positive", "neutral", "negative"]},
}
CONSOLE_HINT = (
    "",
    "the controller stops now. To open the console on these calls, run the demo with --keep",
    "(`callcenter demo --keep`, or `make demo DEMO_ARGS=--keep`): it keeps the controller up",
    "and prints the console's URL and a throwaway admin token to log in with.",
)

# Slow enough to follow, fast enough that the whole demo takes seconds; the server answers
# as fast as the real one does, so that the calls' measured waits mean something.
DEMO_PACING = dataclasses.replace(
    REALISTIC_SERVER,
    delta_interval=0.04,
    playback_seconds=0.2,
    playback_per_char=0.012,
    speech_per_char=0.015,
    close_delay=0.05,
)


@dataclass(frozen=True)
class ConfigOverlay:
    """The demo's config: where it was written and what it changes from the example."""

    path: Path
    changes: str


def demo_scenarios() -> list[Scenario]:
    """The bundled demo scenarios, in order."""
    return [load_scenario(path) for path in scenario_files([SCENARIO_DIR])]


def write_demo_config(
    directory: Path, *, now: datetime | None = None, notify_url: str | None = None
) -> ConfigOverlay:
    """Write the example config with the demo's overlay into ``directory``.

    The overlay makes "busy" reachable with two held calls (a limit of 2, rejecting with 486
    when full) and "after hours" certain at any time (today and the six days after, in the
    sales route's time zone, become closed dates, so a kept demo stays closed for a week).
    With ``notify_url``, every call's end and the support route's analyses go there (the
    secret in :data:`NOTIFY_SECRET_ENV`).
    """
    source = example_config_path()
    data: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    limits = data.setdefault("limits", {})
    limits["max_concurrent_calls"] = MAX_CONCURRENT_CALLS
    limits["when_full"] = WHEN_FULL
    route = next(r for r in data.get("routes", []) if r.get("name") == CLOSED_ROUTE)
    hours = route["hours"]
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(hours["timezone"])).date()
    closed: list[date] = list(hours.get("closed_dates", []))
    week = [today + timedelta(days=n) for n in range(CLOSED_DAYS)]
    hours["closed_dates"] = sorted({*closed, *week})
    if notify_url is not None:
        support = next(r for r in data["routes"] if r.get("name") == ANALYSED_ROUTE)
        support["analysis"] = DEMO_ANALYSIS
        data["notify"] = [
            {
                "url": notify_url,
                "secret": f"env:{NOTIFY_SECRET_ENV}",
                "events": ["call.ended", "call.analyzed"],
            }
        ]
    path = directory / "callcenter-demo.toml"
    path.write_text(
        f"# The demo's config: {source.name} with an overlay written by `callcenter demo`.\n"
        + tomli_w.dumps(data),
        encoding="utf-8",
    )
    changes = (
        f"limits.max_concurrent_calls = {MAX_CONCURRENT_CALLS}, "
        f'limits.when_full = "{WHEN_FULL}", and today ({today}) and the '
        f"{CLOSED_DAYS - 1} days after added to the {CLOSED_ROUTE} route's closed_dates"
    )
    if notify_url is not None:
        changes += f", an analysis on the {ANALYSED_ROUTE} route and a [[notify]] to {notify_url}"
    return ConfigOverlay(path, changes)


def summary_table(
    results: Sequence[ScenarioResult], stored: Mapping[str, CallOutcome | None]
) -> list[str]:
    """One row per demo call: what was expected, what happened, and whether they match.

    ``stored`` holds the outcome the controller stored for each call_id, the one the
    console, the API, the CLI and the metrics show.
    """
    rows = [
        [
            result.scenario.name,
            _expected(result.scenario),
            _got(result),
            (stored.get(result.call.call_id) or "") if result.call else "",
            "ok" if result.passed else "MISMATCH",
        ]
        for result in results
    ]
    return table(["call", "expected", "got", "stored outcome", "ok"], rows)


def stored_outcomes(
    store: Store, results: Sequence[ScenarioResult]
) -> dict[str, CallOutcome | None]:
    """The outcome the controller stored for each call of ``results``."""
    outcomes: dict[str, CallOutcome | None] = {}
    for result in results:
        if result.call is not None:
            record = store.get_call(result.call.call_id)
            outcomes[result.call.call_id] = record.outcome if record else None
    return outcomes


def latency_table(store: Store, results: Sequence[ScenarioResult]) -> list[str]:
    """The caller's wait on each demo call that reached the voice, as the store holds it."""
    rows: list[list[str]] = []
    for result in results:
        record = store.get_call(result.call.call_id) if result.call is not None else None
        if record is None or record.latency is None:
            continue
        wait = latency_summary(record.latency)
        cells = [wait[key] for key in ("greeting_ms", "turn_p50_ms", "turn_p90_ms", "tool_ms")]
        shown = [f"{value:.0f} ms" if value is not None else "-" for value in cells]
        rows.append([result.scenario.name, shown[0], str(wait["turns"]), *shown[1:]])
    headers = ["call", "greeting", "turns", "turn p50", "turn p90", "tools"]
    return table(headers, rows) if rows else []


def run_demo(echo: Echo, *, keep: bool = False, pacing: Pacing = DEMO_PACING) -> int:
    """Run the demo; 0 if every call went as expected, else 1 (130 if interrupted)."""
    scenarios = demo_scenarios()
    with (
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="callcenter-demo-") as tmp,
    ):
        workdir = Path(tmp)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        receiver = Receiver(secret, lambda event: echo(_arrived(event)))
        receiver.start()
        overlay = write_demo_config(workdir, notify_url=receiver.url)
        echo(f"config: the example config with {overlay.changes}")
        echo("starting the emulator of OpenAI's side and the controller on loopback...")
        status = 130
        try:
            with local_setup(
                overlay.path,
                pacing=pacing,
                workdir=workdir,
                extra_env={NOTIFY_SECRET_ENV: secret},
            ) as setup:
                echo(f"controller {setup.controller.url}  emulator {setup.emulator.url}")
                echo("")
                simulator = Simulator(
                    InProcessEmulator(setup.emulator), echo, controller_idle=setup.controller_idle
                )
                results = simulator.run(scenarios)
                simulator.wait_until_idle()
                for line in summary_table(results, stored_outcomes(setup.store, results)):
                    echo(line)
                waits = latency_table(setup.store, results)
                if waits:
                    echo("")
                    echo("the caller's wait (the emulator plays realistic server timings):")
                for line in waits:
                    echo(line)
                status = 0 if all(result.passed for result in results) else 1
                if not _notified(receiver, results, echo):
                    status = 1
                if not keep:
                    for line in CONSOLE_HINT:
                        echo(line)
                if keep:
                    _keep_serving(setup.emulator, setup.controller.url, setup.operator_token, echo)
        except KeyboardInterrupt:
            echo("stopping")
        finally:
            receiver.stop()
        return status


def _arrived(event: Mapping[str, Any]) -> str:
    """One line for a notification the demo's receiver verified."""
    data = event.get("data") or {}
    line = f"notification {event.get('type')} {data.get('call_id')} (signature verified)"
    analysis = data.get("analysis")
    if isinstance(analysis, dict):
        line += f": {json.dumps(analysis)[:160]}"
    return line


def _notified(receiver: Receiver, results: Sequence[ScenarioResult], echo: Echo) -> bool:
    """Wait (bounded) for one call.ended per call and a call.analyzed; say what came."""
    calls = {r.call.call_id for r in results if r.call is not None}
    deadline = time.monotonic() + NOTIFY_WAIT

    def ended() -> set[str]:
        return {e["data"]["call_id"] for e in receiver.of_type("call.ended")}

    while time.monotonic() < deadline and not (
        calls <= ended() and receiver.of_type("call.analyzed")
    ):
        time.sleep(POLL_INTERVAL)
    got_all = calls <= ended() and bool(receiver.of_type("call.analyzed"))
    # Scenarios that fill the line hold calls of their own: those end and are notified too.
    echo(
        f"notifications: {len(receiver.of_type('call.ended'))} call.ended for "
        f"{len(ended())} calls ({len(calls & ended())} of the {len(calls)} scenario calls), "
        f"{len(receiver.of_type('call.analyzed'))} call.analyzed"
        + ("" if got_all else " (MISSING some)")
    )
    return got_all


def _keep_serving(
    emulator: EmulatorThread, controller_url: str, operator_token: str, echo: Echo
) -> None:
    """Print how to reach both and watch new calls until interrupted."""
    place = json.dumps(
        {
            "from_number": "+14155550123",
            "to_number": "+18005550100",
            "script": [
                {"type": "wait_for", "kind": "output_audio_buffer.stopped"},
                {"type": "say", "text": "Hi, where is my order?"},
                {"type": "wait_for", "kind": "output_audio_buffer.stopped"},
                {"type": "hang_up"},
            ],
        }
    )
    curl = (
        f"curl -s -X POST {emulator.url}/_emulator/calls "
        f"-H 'content-type: application/json' -d {shlex.quote(place)}"
    )
    for line in (
        "",
        "the emulator and the controller keep running (Ctrl-C to stop):",
        f"  controller      {controller_url}",
        f"  console         {controller_url}/console  (open it; log in with the token below)",
        f"  operator token  {operator_token}  (throwaway, admin; also for the API and "
        "`callcenter calls`)",
        f"  emulator        {emulator.url}  (OPENAI_BASE_URL={emulator.base_url})",
        f"  API key         {emulator.emulator.api_key}  (throwaway, for this demo only)",
        f"  webhook secret  {emulator.emulator.webhook_secret}  (throwaway)",
        "place another call:",
        f"  {curl}",
        f"see what happened to it:  curl -s {emulator.url}/_emulator/calls",
        "play the shipped scenarios against both (from a checkout; in another terminal):",
        f"  callcenter simulate --controller {controller_url} --emulator {emulator.url} "
        f"{EXAMPLE_SCENARIOS}",
        "",
    ):
        echo(line)
    _watch_new_calls(InProcessEmulator(emulator), echo, known=set(emulator.calls))


def _watch_new_calls(emulator: InProcessEmulator, echo: Echo, known: set[str]) -> None:
    """Print the timeline of every call placed from now on; returns only when interrupted."""
    watching: dict[str, tuple[CallWatcher, Timeline]] = {}
    while True:
        for call_id, call in list(emulator.thread.calls.items()):
            if call_id not in known:
                known.add(call_id)
                watching[call_id] = (CallWatcher(emulator, call), Timeline(call.created_at))
                echo(f"== call {call_id}")
        for call_id, (watcher, timeline) in list(watching.items()):
            for moment in watcher.poll():
                line = timeline.line(moment)
                if line is not None:
                    echo(line)
            if watcher.call.state in FINAL_STATES and not watcher.attached:
                del watching[call_id]
        time.sleep(POLL_INTERVAL * 5)


def _expected(scenario: Scenario) -> str:
    expect = scenario.expect
    return _summary(
        expect.decision,
        expect.rejected,
        expect.referred_to,
        expect.controller_outcome or expect.outcome,
    )


def _got(result: ScenarioResult) -> str:
    call = result.call
    if call is None:
        failure = result.first_failure
        return failure.actual if failure else "not placed"
    answer = controller_answer(call) or {}
    expect = result.scenario.expect
    outcome = answer.get("outcome") if expect.controller_outcome else emulator_outcome(call)
    return _summary(answer.get("decision"), call.reject_code, call.refer_target, outcome)


def _summary(
    decision: str | None, code: int | None, target: str | None, outcome: str | None
) -> str:
    parts = [decision or "no decision"]
    if code is not None:
        parts[0] += f" {code}"
    if target is not None and decision == "refer":
        parts[0] += f" to {target}"
    elif target is not None:
        parts.append(f"transferred to {target}")
    if outcome and outcome not in ("rejected", "referred"):
        parts.append(outcome)
    return ", ".join(parts)
