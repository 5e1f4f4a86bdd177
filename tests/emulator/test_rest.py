"""The calls REST endpoints, driven by the real SDK over loopback."""

from __future__ import annotations

import time

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from callcenter.emulator import CallState, Emulator

from .helpers import answered


async def test_accept_answers_the_call_and_records_the_config(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """accept returns None, moves the call to accepted and keeps the body."""
    call = emulator.place_call()
    result = await client.realtime.calls.accept(
        call.call_id, type="realtime", model="gpt-realtime-2", instructions="Be brief."
    )
    assert result is None
    assert call.state is CallState.ACCEPTED
    assert call.accept_body == {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "instructions": "Be brief.",
    }
    assert [(r.verb, r.status) for r in call.rest_requests] == [("accept", 200)]


async def test_a_wrong_api_key_is_401_with_openais_error_shape(emulator: Emulator) -> None:
    """A bad bearer key gets 401 invalid_api_key and changes nothing."""
    call = emulator.place_call()
    async with AsyncOpenAI(api_key="sk-wrong", base_url=emulator.base_url, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            await bad.realtime.calls.accept(call.call_id, type="realtime")
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.type == "invalid_request_error"
    assert call.state is CallState.RINGING


async def test_a_missing_api_key_is_401(emulator: Emulator) -> None:
    """A request without Authorization gets 401."""
    call = emulator.place_call()
    url = f"{emulator.base_url}/realtime/calls/{call.call_id}/hangup"
    async with aiohttp.ClientSession() as http, http.post(url) as answer:
        assert answer.status == 401
        assert (await answer.json())["error"]["code"] == "invalid_api_key"


async def test_an_unknown_accept_key_is_400_naming_the_param(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """An unknown key, even nested, is 400 unknown_parameter with its path as param."""
    call = emulator.place_call()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.realtime.calls.accept(
            call.call_id, type="realtime", extra_body={"audio": {"output": {"voise": "marin"}}}
        )
    assert caught.value.code == "unknown_parameter"
    assert caught.value.param == "audio.output.voise"
    assert call.state is CallState.RINGING


@pytest.mark.parametrize(
    ("config", "param", "code"),
    [
        ({"max_output_tokens": 5000}, "max_output_tokens", "invalid_value"),
        ({"output_modalities": ["text", "audio"]}, "output_modalities", "invalid_value"),
        ({"audio": {"output": {"voice": 7}}}, "audio.output.voice", "invalid_type"),
        ({"tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
        ({"tools": [{"type": "function", "description": "no name"}]}, "tools[0].name", None),
    ],
)
async def test_an_invalid_accept_value_is_400_naming_the_param(
    emulator: Emulator, client: AsyncOpenAI, config: dict[str, object], param: str, code: str | None
) -> None:
    """Values outside the SDK's types or ranges are 400 with param (and code)."""
    call = emulator.place_call()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.realtime.calls.accept(call.call_id, type="realtime", extra_body=config)
    assert caught.value.param == param
    assert caught.value.code == (code or "missing_required_parameter")


async def test_a_custom_voice_object_is_accepted(emulator: Emulator, client: AsyncOpenAI) -> None:
    """audio.output.voice may be {"id": ...}."""
    call = emulator.place_call()
    await client.realtime.calls.accept(
        call.call_id, type="realtime", audio={"output": {"voice": {"id": "voice_123"}}}
    )
    assert call.state is CallState.ACCEPTED


async def test_an_unknown_call_is_404_call_id_not_found(client: AsyncOpenAI) -> None:
    """A call that was never placed is 404 call_id_not_found."""
    with pytest.raises(openai.NotFoundError) as caught:
        await client.realtime.calls.accept("rtc_" + "0" * 32, type="realtime")
    assert caught.value.code == "call_id_not_found"


async def test_a_call_missed_by_the_caller_is_404(emulator: Emulator, client: AsyncOpenAI) -> None:
    """Accepting after the caller hung up while ringing is 404."""
    call = emulator.place_call()
    assert emulator.caller_hangs_up(call.call_id)
    assert call.state is CallState.MISSED
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.accept(call.call_id, type="realtime")


async def test_a_call_rings_out_after_the_ring_timeout(emulator: Emulator) -> None:
    """Unanswered for ring_timeout seconds, a call is missed."""
    emulator.ring_timeout = 0.05
    call = emulator.place_call()
    await emulator.wait_for(lambda: call.state is CallState.MISSED, timeout=2)
    assert call.ended_by == "timeout"


async def test_a_second_accept_is_409(emulator: Emulator, client: AsyncOpenAI) -> None:
    """Accepting an accepted call is 409 call_already_accepted."""
    call = await answered(emulator, client)
    with pytest.raises(openai.ConflictError) as caught:
        await client.realtime.calls.accept(call.call_id, type="realtime")
    assert caught.value.code == "call_already_accepted"


async def test_reject_records_the_sip_code(emulator: Emulator, client: AsyncOpenAI) -> None:
    """reject with status_code ends the ringing call as rejected."""
    call = emulator.place_call()
    await client.realtime.calls.reject(call.call_id, status_code=486)
    assert (call.state, call.reject_code) == (CallState.REJECTED, 486)


async def test_reject_defaults_to_603(emulator: Emulator, client: AsyncOpenAI) -> None:
    """reject without a code declines with 603."""
    call = emulator.place_call()
    await client.realtime.calls.reject(call.call_id)
    assert call.reject_code == 603


async def test_reject_outside_400_699_is_400(emulator: Emulator, client: AsyncOpenAI) -> None:
    """A status_code that is no SIP error code is 400 on param status_code."""
    call = emulator.place_call()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.realtime.calls.reject(call.call_id, status_code=200)
    assert (caught.value.param, caught.value.code) == ("status_code", "invalid_value")


async def test_reject_on_an_accepted_call_is_409(emulator: Emulator, client: AsyncOpenAI) -> None:
    """An accepted call cannot be rejected."""
    call = await answered(emulator, client)
    with pytest.raises(openai.ConflictError):
        await client.realtime.calls.reject(call.call_id, status_code=486)


async def test_refer_before_accept_is_409(emulator: Emulator, client: AsyncOpenAI) -> None:
    """refer needs an accepted call."""
    call = emulator.place_call()
    with pytest.raises(openai.ConflictError) as caught:
        await client.realtime.calls.refer(call.call_id, target_uri="tel:+14155550123")
    assert caught.value.code == "call_not_accepted"


@pytest.mark.parametrize("target", ["mailto:desk@example.com", "tel:", "+14155550123"])
async def test_refer_to_a_non_sip_target_is_400(
    emulator: Emulator, client: AsyncOpenAI, target: str
) -> None:
    """target_uri must be a tel:, sip: or sips: URI with something after the scheme."""
    call = await answered(emulator, client)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.realtime.calls.refer(call.call_id, target_uri=target)
    assert caught.value.param == "target_uri"


async def test_refer_transfers_the_call(emulator: Emulator, client: AsyncOpenAI) -> None:
    """An unscripted target answers shortly after the 200: the call ends as referred."""
    call = await answered(emulator, client)
    await client.realtime.calls.refer(call.call_id, target_uri="sip:queue@pbx.example.com?X-T=1")
    assert call.state is CallState.ACCEPTED  # relayed: the target has not answered yet
    await emulator.wait_for(lambda: call.state is CallState.REFERRED)
    assert call.refer_target == "sip:queue@pbx.example.com?X-T=1"
    assert [a["result"] for a in call.refer_attempts] == ["answered"]
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.hangup(call.call_id)


async def test_a_busy_or_unanswered_target_leaves_the_call_with_us(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """busy and no_answer: a 200 each time, and the call stays live (it can still hang up)."""
    call = await answered(emulator, client)
    emulator.faults.script_transfer("sip:desk@pbx.example.com", "busy")
    emulator.faults.script_transfer(None, "no_answer")
    await client.realtime.calls.refer(call.call_id, target_uri="sip:desk@pbx.example.com?X-T=1")
    await client.realtime.calls.refer(call.call_id, target_uri="tel:+14155550100")
    assert [a["result"] for a in call.refer_attempts] == ["busy", "no_answer"]
    assert (call.state, call.refer_target) == (CallState.ACCEPTED, None)
    await client.realtime.calls.hangup(call.call_id)
    assert call.state is CallState.ENDED


async def test_a_refused_transfer_answers_its_status(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """refused: /refer answers the scripted status; only that target is refused."""
    call = await answered(emulator, client)
    emulator.faults.script_transfer("sip:desk@pbx.example.com", "refused", status=486)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.realtime.calls.refer(call.call_id, target_uri="sip:desk@pbx.example.com")
    assert caught.value.status_code == 486
    emulator.faults.script_transfer(None, "answered", after=0.0)
    await client.realtime.calls.refer(call.call_id, target_uri="sip:other@pbx.example.com")
    await emulator.wait_for(lambda: call.state is CallState.REFERRED)
    assert [a["result"] for a in call.refer_attempts] == ["refused", "answered"]


async def test_hangup_ends_a_live_call(emulator: Emulator, client: AsyncOpenAI) -> None:
    """hangup ends the call; a second hangup is 404."""
    call = await answered(emulator, client)
    await client.realtime.calls.hangup(call.call_id)
    assert (call.state, call.ended_by) == (CallState.ENDED, "controller")
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.hangup(call.call_id)


async def test_an_injected_503_fails_the_next_requests_then_clears(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A REST fault answers its status for the next N matching requests, with no effect."""
    call = emulator.place_call()
    emulator.faults.fail_rest("accept", status=503, times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await client.realtime.calls.accept(call.call_id, type="realtime")
    assert call.state is CallState.RINGING
    await client.realtime.calls.accept(call.call_id, type="realtime")
    assert [r.status for r in call.rest_requests] == [503, 503, 200]


async def test_an_injected_429_carries_retry_after(emulator: Emulator, client: AsyncOpenAI) -> None:
    """A 429 fault answers rate_limit_exceeded with its Retry-After header."""
    call = emulator.place_call()
    emulator.faults.fail_rest(status=429, retry_after=2, call_id=call.call_id)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.realtime.calls.accept(call.call_id, type="realtime")
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"


async def test_an_injected_latency_delays_the_answer(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """A latency fault answers late but normally."""
    call = emulator.place_call()
    emulator.faults.delay_rest("accept", seconds=0.2)
    started = time.monotonic()
    await client.realtime.calls.accept(call.call_id, type="realtime")
    assert time.monotonic() - started >= 0.2
    assert call.state is CallState.ACCEPTED
