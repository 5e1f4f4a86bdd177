"""``callcenter simulate``: scenario files played through the emulator against a controller.

Either against a controller of our own (:func:`local_setup`: the emulator in this process
and ``callcenter serve`` as a child, SQLite in a temporary directory), against the user's
running controller (:func:`emulator_for`: only the emulator, on a fixed port, delivering
to the controller's webhook URL), or against a running emulator and the controller it
delivers to, such as a ``callcenter demo --keep`` (:func:`running_emulator`: driven
through its control API). :class:`Simulator` plays the scenarios one after another:
it arms each one's faults, holds its extra calls, places its call, prints the call's
timeline while it happens (a :class:`CallWatcher` polls the emulator's records), waits for
the call to be over, and checks the expectations.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

import httpx

from callcenter.emulator import (
    CallState,
    EmulatedCall,
    EmulatorThread,
    Pacing,
    RestRequest,
    Wait,
    new_webhook_secret,
)
from callcenter.emulator.client import ControlClient
from callcenter.emulator.ids import hex_id
from callcenter.errors import StoreError, UnreachableError
from callcenter.simulation.checks import (
    CheckResult,
    controller_answer,
    decision_mismatch,
    evaluate,
)
from callcenter.simulation.emulators import DrivenEmulator, RemoteEmulator
from callcenter.simulation.scenario import CallSpec, Scenario
from callcenter.simulation.text import table
from callcenter.simulation.timeline import (
    CallOver,
    Moment,
    Placed,
    SidebandEvent,
    SocketClosed,
    Timeline,
    interleave,
)
from callcenter.store import Store, default_sqlite_url
from callcenter.web.serve_process import ServeProcess

T = TypeVar("T")
Echo = Callable[[str], None]
WEBHOOK_PATH = "/webhooks/openai"
POLL_INTERVAL = 0.02
IDLE_TIMEOUT = 5.0  # for the controller to record the end of the previous calls
SETTLE_TIMEOUT = 3.0  # for a call we ended ourselves to be over
CHECK_TIMEOUT = 5.0  # for a running controller to answer /healthz
# On loopback a new connection is cheap; an idle one held open would keep the controller's
# gunicorn workers waiting (up to 2 s) when it stops.
LOCAL_WEBHOOK_KEEPALIVE = 0.2
FINAL_STATES = frozenset(
    {CallState.REJECTED, CallState.MISSED, CallState.REFERRED, CallState.ENDED}
)


@dataclass(frozen=True)
class ScenarioResult:
    """What came of one scenario: its call (None if it was never placed) and its checks."""

    scenario: Scenario
    call: EmulatedCall | None
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """Every check held."""
        return all(check.passed for check in self.checks)

    @property
    def first_failure(self) -> CheckResult | None:
        """The first check that did not hold."""
        return next((check for check in self.checks if not check.passed), None)


class CallWatcher:
    """Notices what happens to one call by polling the emulator's records of it.

    The records of webhooks and REST requests carry their own times; sideband events are
    stamped with the time they are first noticed, so a poll every few ms is precise enough
    for a timeline.
    """

    def __init__(self, emulator: DrivenEmulator, call: EmulatedCall, copies: int = 1) -> None:
        self._emulator = emulator
        self.call = call
        self._copies = copies
        self._counts = {"webhooks": 0, "rest": 0, "client": 0, "server": 0}
        self._opened = 0
        self._closed = 0
        self._placed = False
        self._over = False

    def poll(self) -> list[Moment]:
        """The moments that happened since the last poll, in order.

        Records that carry their own time are exact; sideband events get the poll's time,
        moved back before the call's end (nothing is said after it) and kept after the
        answer that opened the call, so that a timeline never runs backwards.
        """
        self._emulator.refresh(self.call)
        call, now = self.call, time.time()
        timed: list[Moment] = []
        if not self._placed:
            self._placed = True
            timed.append(
                Placed(call.created_at, call.to_number, call.from_number, call.caller_name)
            )
        timed += self._new("webhooks", call.webhook_attempts)
        timed += self._new("rest", call.rest_requests)
        server = self._new("server", call.server_events)
        client = self._new("client", call.client_events)
        if call.state in FINAL_STATES and not self._over:
            self._over = True
            timed.append(CallOver(call.ended_at or now, call.state.value, call.ended_by))
        self._opened += sum(event["type"] == "session.created" for event in server)
        open_now = 1 if self.attached else 0
        while self._closed < self._opened - open_now:
            self._closed += 1
            timed.append(SocketClosed(now))
        before_end = min([now, *(m.at for m in timed if _rank(m) == 2)])
        events_at = max([before_end, *(m.at for m in timed if _rank(m) == 0)])
        found = timed + interleave(server, client, events_at)
        found.sort(key=lambda moment: (moment.at, _rank(moment)))
        return found

    @property
    def attached(self) -> bool:
        """A sideband is attached to the call (as of the last poll)."""
        return self.call.attached

    @property
    def finished(self) -> bool:
        """Over, every webhook delivery done, and no sideband attached (as of the last poll)."""
        return self.call.state in FINAL_STATES and self.deliveries_done and not self.attached

    @property
    def deliveries_done(self) -> bool:
        """Each copy of the call's webhook was answered 2xx or given up."""
        limit = self._emulator.max_attempts
        for copy in range(self._copies):
            attempts = [a for a in self.call.webhook_attempts if a.copy == copy]
            answered = any(a.status is not None and 200 <= a.status < 300 for a in attempts)
            if not answered and len(attempts) < limit:
                return False
        return True

    def _new(self, kind: str, records: Sequence[T]) -> list[T]:
        start = self._counts[kind]
        fresh = list(records[start:])
        self._counts[kind] = start + len(fresh)
        return fresh


class Simulator:
    """Plays scenarios against the controller the emulator delivers to, printing as it goes.

    ``controller_idle`` tells when the controller has recorded the end of earlier calls
    (our own controller's store), or when a running emulator has no live call, so that a
    scenario's load is only its own.
    """

    def __init__(
        self,
        emulator: DrivenEmulator,
        echo: Echo,
        *,
        controller_idle: Callable[[], bool] | None = None,
    ) -> None:
        self._emulator = emulator
        self._echo = echo
        self._controller_idle = controller_idle

    def run(self, scenarios: Sequence[Scenario]) -> list[ScenarioResult]:
        """Play each scenario in turn; the results in the same order."""
        return [self.run_one(scenario) for scenario in scenarios]

    def run_one(self, scenario: Scenario) -> ScenarioResult:
        """Play one scenario: hold its extra calls, place its call, watch it, check it."""
        self._echo(f"== {scenario.name}  ({Path(scenario.file).name})")
        self.wait_until_idle()
        deadline = time.monotonic() + scenario.timeout
        held, problem = self._hold(scenario, deadline)
        call: EmulatedCall | None = None
        try:
            if problem is not None:
                calls = scenario.hold.calls if scenario.hold else 0
                checks = [CheckResult("hold", False, f"{calls} held calls accepted", problem)]
            else:
                call = self._place(scenario)
                stopped = self._watch(scenario, call, deadline)
                checks = evaluate(scenario.expect, call)
                if stopped is not None:
                    checks.insert(0, stopped)
        finally:
            self._release(held)
        return self._finish(scenario, call, checks)

    def _place(self, scenario: Scenario) -> EmulatedCall:
        """Arm the call's faults under the id it will have, then place it."""
        call_id = hex_id("rtc")
        faults = scenario.faults_for(call_id)
        return self._emulator.place(scenario.call, scenario.steps, call_id=call_id, faults=faults)

    def _watch(self, scenario: Scenario, call: EmulatedCall, deadline: float) -> CheckResult | None:
        """Print the call's timeline until it is finished; the failed check that stopped it
        early (a decision other than the expected one, or the deadline), if any."""
        watcher = CallWatcher(self._emulator, call, scenario.call.delivery.copies)
        timeline = Timeline(call.created_at)
        hang_up_after = scenario.call.hang_up_while_ringing_after
        placed = time.monotonic()
        stopped: CheckResult | None = None
        settle_until: float | None = None
        while True:
            self._print(timeline, watcher.poll())
            now = time.monotonic()
            if watcher.finished:
                return stopped
            if hang_up_after is not None and now - placed >= hang_up_after:
                hang_up_after = None
                if call.state is CallState.RINGING:
                    self._emulator.hang_up(call.call_id)
            if settle_until is None and watcher.deliveries_done:
                stopped = decision_mismatch(scenario.expect, call)
                if stopped is not None:
                    self._echo(f"  {describe_failure(stopped)}: not waiting; hanging up")
            if settle_until is None and stopped is None and now > deadline:
                within = f"the call over within {scenario.timeout:g}s"
                stopped = CheckResult("finished", False, within, _unfinished(watcher))
                self._echo(f"  timed out after {scenario.timeout:g}s: {stopped.actual}; hanging up")
            if settle_until is None and stopped is not None:
                if call.state not in FINAL_STATES:
                    self._emulator.hang_up(call.call_id)
                settle_until = now + SETTLE_TIMEOUT
            if settle_until is not None and now > settle_until:
                return stopped
            time.sleep(POLL_INTERVAL)

    def _hold(self, scenario: Scenario, deadline: float) -> tuple[list[EmulatedCall], str | None]:
        """Place the scenario's held calls one by one, each answered before the next."""
        if scenario.hold is None:
            return [], None
        hold, held = scenario.hold, []
        spec = CallSpec(to_number=hold.to_number, from_number=hold.from_number)
        for number in range(1, hold.calls + 1):
            call = self._emulator.place(spec, (Wait(scenario.timeout + SETTLE_TIMEOUT),))
            held.append(call)
            watcher = CallWatcher(self._emulator, call)
            while not watcher.deliveries_done and time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
                self._emulator.refresh(call)
            if call.state is not CallState.ACCEPTED:
                answer = controller_answer(call) or {}
                decided = answer.get("decision", "no decision")
                return held, f"held call {number} was {call.state.value} ({decided})"
        self._echo(f"  holding {hold.calls} live calls to {hold.to_number}")
        return held, None

    def _release(self, held: Sequence[EmulatedCall]) -> None:
        """Hang up the held calls and wait (bounded) for their sidebands to close."""
        if not held:
            return
        for call in held:
            self._emulator.hang_up(call.call_id)
        until = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < until:
            for call in held:
                self._emulator.refresh(call)
            if not any(call.attached for call in held):
                break
            time.sleep(POLL_INTERVAL)
        self._echo(f"  released the {len(held)} held calls")

    def wait_until_idle(self) -> None:
        """Wait (boundedly) until our own controller has recorded the end of every call."""
        idle = self._controller_idle
        if idle is None:
            return
        until = time.monotonic() + IDLE_TIMEOUT
        while not idle() and time.monotonic() < until:
            time.sleep(POLL_INTERVAL)

    def _finish(
        self, scenario: Scenario, call: EmulatedCall | None, checks: list[CheckResult]
    ) -> ScenarioResult:
        result = ScenarioResult(scenario, call, tuple(checks))
        failure = result.first_failure
        if failure is None:
            self._echo(f"  -> PASS ({len(checks)} checks)")
        else:
            self._echo(f"  -> FAIL {describe_failure(failure)}")
        self._echo("")
        return result

    def _print(self, timeline: Timeline, moments: Sequence[Moment]) -> None:
        for moment in moments:
            line = timeline.line(moment)
            if line is not None:
                self._echo(line)


def describe_failure(check: CheckResult) -> str:
    """``name: expected X, got Y``."""
    return f"{check.name}: expected {check.expected}, got {check.actual}"


def results_table(results: Sequence[ScenarioResult]) -> list[str]:
    """The pass/fail table: scenario, checks held, result, first failed check."""
    rows = []
    for result in results:
        held = sum(check.passed for check in result.checks)
        failure = result.first_failure
        rows.append(
            [
                result.scenario.name,
                f"{held}/{len(result.checks)}",
                "PASS" if result.passed else "FAIL",
                describe_failure(failure) if failure else "",
            ]
        )
    return table(["scenario", "checks", "result", "first failed check"], rows)


def webhook_url(controller_url: str) -> str:
    """The controller's webhook URL, given either it or the controller's base URL."""
    url = controller_url.rstrip("/")
    return url if url.endswith(WEBHOOK_PATH) else url + WEBHOOK_PATH


@dataclass(frozen=True)
class LocalSetup:
    """The emulator and a controller of our own, wired to each other."""

    emulator: EmulatorThread
    controller: ServeProcess
    store: Store
    workdir: Path
    operator_token: str  # "demo:<token>:admin" is the controller's one operator

    def controller_idle(self) -> bool:
        """The controller's store holds no ringing or active call."""
        try:
            return self.store.count_active_calls() == 0
        except StoreError:
            return True  # cannot tell; do not hold the scenarios up


@contextlib.contextmanager
def local_setup(
    config_path: Path,
    *,
    pacing: Pacing | None = None,
    workers: int = 2,
    workdir: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[LocalSetup]:
    """Start the emulator and ``callcenter serve`` (SQLite in a temporary directory).

    The API key, webhook secret and operator token are fresh throwaway values. The
    controller's log goes to ``controller.log`` in the work directory, which is removed
    afterwards unless given.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="callcenter-")))
        emulator = EmulatorThread(
            api_key="sk-local-" + secrets.token_hex(12),
            webhook_secret=new_webhook_secret(),
            pacing=pacing,
            webhook_keepalive=LOCAL_WEBHOOK_KEEPALIVE,
        )
        emulator.start()
        stack.callback(emulator.stop)
        database_url = default_sqlite_url(workdir / "data")
        operator_token = secrets.token_urlsafe(18)
        env = {
            "CALLCENTER_OPERATOR_TOKENS": f"demo:{operator_token}:admin",
            "OPENAI_API_KEY": emulator.emulator.api_key,
            "OPENAI_WEBHOOK_SECRET": emulator.emulator.webhook_secret,
            "OPENAI_BASE_URL": emulator.base_url,
            "CALLCENTER_DATA_DIR": str(workdir / "data"),
            "CALLCENTER_DATABASE_URL": database_url,
            **(extra_env or {}),
        }
        log_file = workdir / "controller.log"
        controller = ServeProcess(env, config_path, workers=workers, log_file=log_file)
        stack.callback(controller.stop)
        controller.wait_ready()
        emulator.emulator.webhook_url = controller.webhook_url
        store = stack.enter_context(Store.open(database_url))
        yield LocalSetup(emulator, controller, store, workdir, operator_token)


@contextlib.contextmanager
def emulator_for(
    controller_url: str, *, port: int, api_key: str, webhook_secret: str
) -> Iterator[EmulatorThread]:
    """Only the emulator, of our own, on ``port``, delivering to the user's controller."""
    emulator = EmulatorThread(
        api_key=api_key, webhook_secret=webhook_secret, webhook_url=webhook_url(controller_url)
    )
    emulator.start(port=port)
    try:
        yield emulator
    finally:
        emulator.stop()


@contextlib.contextmanager
def running_emulator(emulator_url: str, controller_url: str) -> Iterator[RemoteEmulator]:
    """The running emulator at ``emulator_url``, once it and the running controller at
    ``controller_url`` answer, and the emulator delivers its calls to that controller.

    An :class:`UnreachableError` says which of them does not answer, or where the emulator
    delivers instead.
    """
    check_controller(controller_url)
    client = ControlClient(emulator_url)
    try:
        info = client.info()
        wanted = webhook_url(controller_url)
        if wanted not in info.webhook_targets:
            shown = ", ".join(info.webhook_targets) or "nowhere"
            reason = f"delivers its calls to {shown}, not to {wanted}"
            raise UnreachableError("emulator", client.url, reason)
        yield RemoteEmulator(client, info.max_attempts)
    finally:
        client.close()


def check_controller(controller_url: str) -> None:
    """An :class:`UnreachableError` unless a controller answers ``/healthz`` there."""
    base = webhook_url(controller_url).removesuffix(WEBHOOK_PATH)
    try:
        answer = httpx.get(base + "/healthz", timeout=CHECK_TIMEOUT)
    except httpx.HTTPError as exc:
        raise UnreachableError("controller", base, f"no answer ({exc})") from exc
    if answer.status_code != httpx.codes.OK:
        reason = f"/healthz answered {answer.status_code}: not a callcenter controller"
        raise UnreachableError("controller", base, reason)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while inside, so cleanup runs on either."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _rank(moment: Moment) -> int:
    """0: opens the call (dialled, answered); 1: on the sideband; 2: ends the call."""
    if isinstance(moment, SidebandEvent):
        return 1
    if isinstance(moment, CallOver | SocketClosed):
        return 2
    return 2 if isinstance(moment, RestRequest) and moment.verb in ("refer", "hangup") else 0


def _unfinished(watcher: CallWatcher) -> str:
    call = watcher.call
    if call.state not in FINAL_STATES:
        return f"still {call.state.value}"
    if not watcher.deliveries_done:
        return "its webhook delivery was still being retried"
    return "its sideband was still open"
