"""The JSON control API under /_emulator/, as another process would drive it."""

from __future__ import annotations

from typing import Any

import aiohttp
from openai import AsyncOpenAI

from callcenter.emulator import CallState, Dtmf, EmulatedCall, Emulator

from .helpers import Receiver


async def _request(
    emulator: Emulator, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, emulator.url + path, json=body) as answer,
    ):
        return answer.status, await answer.json()


async def test_placing_a_call_with_a_json_script(
    emulator: Emulator, receiver: Receiver, client: AsyncOpenAI
) -> None:
    """POST /_emulator/calls rings a call with its script and delivers the webhook."""
    status, body = await _request(
        emulator,
        "POST",
        "/_emulator/calls",
        {
            "from_number": "+14155550199",
            "to_number": "+18005550100",
            "headers": {"X-Ticket": "T-1"},
            "script": [{"type": "say", "text": "hi"}, {"type": "dtmf", "key": "5"}],
        },
    )
    assert status == 201
    call_id = body["call"]["call_id"]
    assert body["call"]["state"] == "ringing"
    await emulator.wait_for(lambda: receiver.requests)
    assert len(emulator.calls[call_id].script) == 2


async def test_the_emulator_says_where_calls_go_and_how_often_they_are_tried(
    emulator: Emulator, receiver: Receiver
) -> None:
    """GET /_emulator: the URLs a call's webhook goes to, and the redelivery policy."""
    status, body = await _request(emulator, "GET", "/_emulator")
    assert status == 200
    assert body["webhook_targets"] == [receiver.url]
    assert body["redelivery"]["max_attempts"] == emulator.redelivery.max_attempts


async def test_a_call_placed_over_the_api_may_choose_its_server_timings(
    emulator: Emulator,
) -> None:
    """server_timings is kept on the call; a value other than realistic or none is a 400."""
    status, body = await _request(
        emulator, "POST", "/_emulator/calls", {"server_timings": "realistic"}
    )
    assert status == 201
    assert emulator.calls[body["call"]["call_id"]].server_timings == "realistic"
    status, body = await _request(emulator, "POST", "/_emulator/calls", {"server_timings": "x"})
    assert status == 400
    assert body["error"]["code"] == "invalid_call"


async def test_a_read_call_says_whether_a_sideband_is_attached_and_reads_back_whole(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """`attached` follows the sideband; EmulatedCall.from_json gives back the call read."""
    call = emulator.place_call(script=(Dtmf("1"),))
    await client.realtime.calls.accept(call.call_id, type="realtime")
    async with client.realtime.connect(call_id=call.call_id) as connection:
        await connection.recv()
        _, body = await _request(emulator, "GET", f"/_emulator/calls/{call.call_id}")
        assert body["call"]["attached"] is True
    await emulator.wait_for(lambda: not call.attached)
    _, body = await _request(emulator, "GET", f"/_emulator/calls/{call.call_id}")
    assert body["call"]["attached"] is False
    assert EmulatedCall.from_json(body["call"]).to_json() == body["call"]


async def test_reading_a_call_gives_its_records(emulator: Emulator, client: AsyncOpenAI) -> None:
    """GET /_emulator/calls/{id} has the state, REST requests and events."""
    call = emulator.place_call()
    await client.realtime.calls.accept(call.call_id, type="realtime")
    status, body = await _request(emulator, "GET", f"/_emulator/calls/{call.call_id}")
    assert status == 200
    assert body["call"]["state"] == "accepted"
    assert body["call"]["rest_requests"][0]["verb"] == "accept"
    assert body["call"]["accept_body"] == {"type": "realtime"}


async def test_the_caller_hangs_up_through_the_api(emulator: Emulator) -> None:
    """POST …/hangup ends the call as the caller; again is 409."""
    call = emulator.place_call()
    status, _ = await _request(emulator, "POST", f"/_emulator/calls/{call.call_id}/hangup")
    assert (status, call.state) == (200, CallState.MISSED)
    status, body = await _request(emulator, "POST", f"/_emulator/calls/{call.call_id}/hangup")
    assert (status, body["error"]["code"]) == (409, "call_over")


async def test_an_unknown_call_is_404(emulator: Emulator) -> None:
    """Unknown ids are 404 with the JSON error shape."""
    status, body = await _request(emulator, "GET", "/_emulator/calls/rtc_nope")
    assert (status, body["error"]["code"]) == (404, "call_not_found")


async def test_a_bad_script_is_400_saying_which_step(emulator: Emulator) -> None:
    """An invalid step is rejected with the step's position in the message."""
    script = [{"type": "say", "text": "ok"}, {"type": "sing"}]
    status, body = await _request(emulator, "POST", "/_emulator/calls", {"script": script})
    assert status == 400
    assert "script[1]" in body["error"]["message"]


async def test_faults_are_armed_listed_and_cleared(emulator: Emulator, client: AsyncOpenAI) -> None:
    """POST /_emulator/faults arms a fault that fires on the next request."""
    status, _ = await _request(
        emulator, "POST", "/_emulator/faults", {"kind": "rest", "verb": "accept", "status": 502}
    )
    assert status == 201
    _, listed = await _request(emulator, "GET", "/_emulator/faults")
    assert listed["faults"][0]["status"] == 502
    await _request(emulator, "DELETE", "/_emulator/faults")
    assert emulator.faults.pending() == []


async def test_a_transfer_outcome_is_scripted_through_the_api(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    """POST /_emulator/faults {"kind": "transfer"}: the next REFER to that target is busy."""
    fault = {"kind": "transfer", "target": "sip:desk@pbx.example.com", "result": "busy"}
    status, _ = await _request(emulator, "POST", "/_emulator/faults", fault)
    assert status == 201
    _, listed = await _request(emulator, "GET", "/_emulator/faults")
    assert (listed["faults"][0]["kind"], listed["faults"][0]["result"]) == ("transfer", "busy")
    call = emulator.place_call()
    await client.realtime.calls.accept(call.call_id, type="realtime")
    await client.realtime.calls.refer(call.call_id, target_uri="sip:desk@pbx.example.com")
    assert call.state is CallState.ACCEPTED
    _, read = await _request(emulator, "GET", f"/_emulator/calls/{call.call_id}")
    assert [a["result"] for a in read["call"]["refer_attempts"]] == ["busy"]
    bad = {"kind": "transfer", "result": "maybe"}
    status, _ = await _request(emulator, "POST", "/_emulator/faults", bad)
    assert status == 400


async def test_an_invalid_fault_is_400(emulator: Emulator) -> None:
    """A fault of an unknown kind or with unknown fields is rejected."""
    status, _ = await _request(emulator, "POST", "/_emulator/faults", {"kind": "dns"})
    assert status == 400
    status, _ = await _request(emulator, "POST", "/_emulator/faults", {"kind": "rest", "x": 1})
    assert status == 400


async def test_other_webhooks_are_sent_through_the_api(
    emulator: Emulator, receiver: Receiver
) -> None:
    """POST /_emulator/webhooks delivers an event of any type."""
    status, body = await _request(
        emulator, "POST", "/_emulator/webhooks", {"type": "batch.completed", "data": {"id": "b1"}}
    )
    assert status == 202
    await emulator.wait_for(lambda: receiver.requests)
    assert body["event"]["data"] == {"id": "b1"}
