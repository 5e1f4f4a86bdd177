"""Call control against the emulator: what is retried, what is not, and the deadline."""

from __future__ import annotations

import time

import openai
import pytest

from callcenter.control import CallControl, ControlPolicy
from callcenter.emulator import CallState, EmulatorThread
from callcenter.errors import CallApiError, CallConflictError, CallGoneError
from tests.harness import API_KEY

SESSION = {"type": "realtime", "instructions": "You are a test agent."}


@pytest.fixture
def quiet_emulator(emulator: EmulatorThread) -> EmulatorThread:
    """The emulator with no controller behind it: calls ring until we act on them."""
    emulator.emulator.webhook_url = None
    return emulator


def control_for(emulator: EmulatorThread, deadline: float = 5.0) -> CallControl:
    client = openai.OpenAI(api_key=API_KEY, base_url=emulator.base_url)
    return CallControl(client, ControlPolicy(deadline=deadline, backoff_initial=0.01))


def requests(emulator: EmulatorThread, call_id: str, verb: str) -> list[int]:
    return [r.status for r in emulator.calls[call_id].rest_requests if r.verb == verb]


def test_accept_answers_a_ringing_call(quiet_emulator: EmulatorThread) -> None:
    """accept sends the session config and the call becomes accepted."""
    call = quiet_emulator.place_call()
    control_for(quiet_emulator).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert call.state is CallState.ACCEPTED
    assert call.accept_body == SESSION


def test_accept_retries_server_errors(quiet_emulator: EmulatorThread) -> None:
    """500, 502 and 503 are retried until the accept goes through."""
    call = quiet_emulator.place_call()
    for status in (500, 502, 503):
        quiet_emulator.faults.fail_rest("accept", status=status, call_id=call.call_id)
    control_for(quiet_emulator).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert requests(quiet_emulator, call.call_id, "accept") == [500, 502, 503, 200]


def test_rate_limit_waits_for_retry_after(quiet_emulator: EmulatorThread) -> None:
    """A 429 is retried no sooner than its Retry-After says."""
    call = quiet_emulator.place_call()
    quiet_emulator.faults.fail_rest("reject", status=429, call_id=call.call_id, retry_after=0.4)
    started = time.monotonic()
    control_for(quiet_emulator).reject(call.call_id, 486)
    assert time.monotonic() - started >= 0.4
    assert requests(quiet_emulator, call.call_id, "reject") == [429, 200]
    assert call.reject_code == 486


def test_retry_after_beyond_the_deadline_gives_up_at_once(quiet_emulator: EmulatorThread) -> None:
    """A Retry-After longer than the time left ends the attempt instead of overrunning."""
    call = quiet_emulator.place_call()
    quiet_emulator.faults.fail_rest("accept", status=429, call_id=call.call_id, retry_after=30)
    started = time.monotonic()
    with pytest.raises(CallApiError) as raised:
        control_for(quiet_emulator, deadline=1.0).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    assert raised.value.status == 429
    assert time.monotonic() - started < 1.0


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
    started = time.monotonic()
    with pytest.raises(CallApiError) as raised:
        control_for(quiet_emulator, deadline=0.8).accept(call.call_id, SESSION)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert raised.value.status == 503
    assert 0.3 < elapsed < 1.5
    assert len(requests(quiet_emulator, call.call_id, "accept")) > 1


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
    assert (call.state, call.refer_target) == (CallState.REFERRED, "tel:+14155550123")
