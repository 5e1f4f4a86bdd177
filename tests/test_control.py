"""Call control against the emulator: what is retried, what is not, and the deadline."""

from __future__ import annotations

from dataclasses import dataclass, field

import openai
import pytest
from openai._utils import maybe_transform
from openai.types.realtime import CallAcceptParams

from callcenter.config.loader import (
    example_config_path,
    load_config,
    parse_config,
    session_config,
    transfer_session_config,
)
from callcenter.control import CallControl, ControlPolicy
from callcenter.emulator import CallState, EmulatorThread
from callcenter.errors import CallApiError, CallConflictError, CallGoneError
from callcenter.tools.registry import load_tools
from tests.harness import API_KEY, wait_for

SESSION = {"type": "realtime", "instructions": "You are a test agent."}


@pytest.fixture
def quiet_emulator(emulator: EmulatorThread) -> EmulatorThread:
    """The emulator with no controller behind it: calls ring until we act on them."""
    emulator.emulator.webhook_url = None
    return emulator


@dataclass
class FakeTime:
    """A monotonic clock that only sleeping moves on, and the sleeps asked for."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def control_for(
    emulator: EmulatorThread, deadline: float = 5.0, fake: FakeTime | None = None
) -> CallControl:
    client = openai.OpenAI(api_key=API_KEY, base_url=emulator.base_url)
    fake = fake or FakeTime()
    policy = ControlPolicy(deadline=deadline, backoff_initial=0.01)
    return CallControl(client, policy, clock=fake.clock, sleep=fake.sleep)


def requests(emulator: EmulatorThread, call_id: str, verb: str) -> list[int]:
    return [r.status for r in emulator.calls[call_id].rest_requests if r.verb == verb]


def test_accept_answers_a_ringing_call(quiet_emulator: EmulatorThread) -> None:
    """accept sends the session config and the call becomes accepted."""
    call = quiet_emulator.place_call()
    control_for(quiet_emulator).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert call.state is CallState.ACCEPTED
    assert call.accept_body == SESSION


ROUTES_OF_EVERY_KIND = """
[[targets]]
name = "desk"
uri = "tel:+14155550100"

[openai.session]
audio.output.speed = 1.1

[[routes]]
name = "main"
instructions = "Help the caller."
tools = ["transfer_to_human"]
[routes.escalation]
target = "desk"
[routes.session]
reasoning = { effort = "low" }
audio.input.turn_detection = { type = "semantic_vad", eagerness = "high" }
[[routes.mcp]]
server_label = "crm"
server_url = "https://crm.example.com/mcp"
auto_approve = ["lookup"]
"""


def test_the_accept_body_is_what_the_sdk_s_own_transform_would_send() -> None:
    """accept skips the SDK's per-call transform: for every route it would change nothing."""
    example = load_config(example_config_path())
    tools = load_tools(example.tool_modules, default_timeout=example.tool_timeout)
    configs = [(example, tools), (parse_config(ROUTES_OF_EVERY_KIND), None)]
    bodies = [
        body
        for config, registry in configs
        for route in config.routes
        for body in (
            session_config(route, config, registry),
            transfer_session_config(route, config),
        )
    ]
    assert len(bodies) >= 10
    for body in bodies:
        assert maybe_transform(dict(body), CallAcceptParams) == body


def test_accept_retries_server_errors(quiet_emulator: EmulatorThread) -> None:
    """500, 502 and 503 are retried until the accept goes through."""
    call = quiet_emulator.place_call()
    for status in (500, 502, 503):
        quiet_emulator.faults.fail_rest("accept", status=status, call_id=call.call_id)
    control_for(quiet_emulator).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert requests(quiet_emulator, call.call_id, "accept") == [500, 502, 503, 200]


def test_rate_limit_waits_for_retry_after(quiet_emulator: EmulatorThread) -> None:
    """A 429 is retried after exactly the wait its Retry-After asks for."""
    call = quiet_emulator.place_call()
    quiet_emulator.faults.fail_rest("reject", status=429, call_id=call.call_id, retry_after=0.4)
    fake = FakeTime()
    control_for(quiet_emulator, fake=fake).reject(call.call_id, 486)
    assert fake.slept == [0.4]
    assert requests(quiet_emulator, call.call_id, "reject") == [429, 200]
    assert call.reject_code == 486


def test_retry_after_beyond_the_deadline_gives_up_at_once(quiet_emulator: EmulatorThread) -> None:
    """A Retry-After longer than the time left ends the attempt instead of overrunning."""
    call = quiet_emulator.place_call()
    quiet_emulator.faults.fail_rest("accept", status=429, call_id=call.call_id, retry_after=30)
    fake = FakeTime()
    with pytest.raises(CallApiError) as raised:
        control_for(quiet_emulator, deadline=1.0, fake=fake).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert raised.value.status == 429
    assert fake.slept == []  # no wait in vain
    assert requests(quiet_emulator, call.call_id, "accept") == [429]


@pytest.mark.parametrize("status", [400, 401, 403])
def test_client_errors_are_never_retried(quiet_emulator: EmulatorThread, status: int) -> None:
    """400, 401 and 403 fail at once, after one request."""
    call = quiet_emulator.place_call()
    quiet_emulator.faults.fail_rest("accept", status=status, call_id=call.call_id)
    with pytest.raises(CallApiError) as raised:
        control_for(quiet_emulator).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert raised.value.status == status
    assert requests(quiet_emulator, call.call_id, "accept") == [status]


def test_accept_of_a_missed_call_is_call_gone(quiet_emulator: EmulatorThread) -> None:
    """The caller hung up while it rang: 404, not retried, CallGoneError."""
    call = quiet_emulator.place_call()
    quiet_emulator.caller_hangs_up(call.call_id)
    with pytest.raises(CallGoneError):
        control_for(quiet_emulator).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert requests(quiet_emulator, call.call_id, "accept") == [404]


def test_second_accept_is_a_conflict(quiet_emulator: EmulatorThread) -> None:
    """Accepting an accepted call: 409, not retried, CallConflictError."""
    call = quiet_emulator.place_call()
    control = control_for(quiet_emulator)
    control.accept(call.call_id, SESSION)  # type: ignore[arg-type]
    with pytest.raises(CallConflictError):
        control.accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert requests(quiet_emulator, call.call_id, "accept") == [200, 409]


def test_persistent_server_errors_stop_at_the_deadline(quiet_emulator: EmulatorThread) -> None:
    """A server that keeps failing is given up on within the total deadline."""
    call = quiet_emulator.place_call()
    quiet_emulator.faults.fail_rest("accept", status=503, call_id=call.call_id, times=None)
    fake = FakeTime()
    with pytest.raises(CallApiError) as raised:
        control_for(quiet_emulator, deadline=0.8, fake=fake).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert raised.value.status == 503
    backoff = fake.slept
    assert len(backoff) > 2
    assert 0.4 < sum(backoff) <= 0.8  # backed off for most of the deadline, never past it
    assert len(requests(quiet_emulator, call.call_id, "accept")) == len(backoff) + 1


def test_slow_answers_time_out_and_are_retried(quiet_emulator: EmulatorThread) -> None:
    """An answer slower than the attempt timeout counts as a timeout and is retried."""
    call = quiet_emulator.place_call()
    quiet_emulator.faults.delay_rest("accept", seconds=1.0, call_id=call.call_id)
    client = openai.OpenAI(api_key=API_KEY, base_url=quiet_emulator.base_url)
    control = CallControl(client, ControlPolicy(deadline=3.0, attempt_timeout=0.3))
    control.accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert call.state is CallState.ACCEPTED


def test_refer_and_hangup_need_an_accepted_call(quiet_emulator: EmulatorThread) -> None:
    """REFER before accept is refused (409); after accept it transfers the call."""
    call = quiet_emulator.place_call()
    control = control_for(quiet_emulator)
    with pytest.raises(CallConflictError):
        control.refer(call.call_id, "tel:+14155550123")
    control.accept(call.call_id, SESSION)  # type: ignore[arg-type]
    control.refer(call.call_id, "tel:+14155550123")
    wait_for(lambda: call.state is CallState.REFERRED, what="the target to answer")
    assert call.refer_target == "tel:+14155550123"


def test_a_failing_refer_is_retried_once_only(quiet_emulator: EmulatorThread) -> None:
    """A REFER that keeps failing with 503 is tried twice, well within the deadline."""
    call = quiet_emulator.place_call()
    fake = FakeTime()
    control = control_for(quiet_emulator, deadline=5.0, fake=fake)
    control.accept(call.call_id, SESSION)  # type: ignore[arg-type]
    quiet_emulator.faults.fail_rest("refer", status=503, call_id=call.call_id, times=None)
    with pytest.raises(CallApiError) as raised:
        control.refer(call.call_id, "tel:+14155550123")
    assert raised.value.status == 503
    assert requests(quiet_emulator, call.call_id, "refer") == [503, 503]
    assert len(fake.slept) == 1
