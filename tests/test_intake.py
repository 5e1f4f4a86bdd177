"""The webhook endpoint end to end: emulator → controller → store → emulator, on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import openai
import pytest

from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, Delivery, EmulatorThread, HangUp, Wait
from callcenter.emulator.state import WebhookAttempt
from callcenter.emulator.webhooks import webhook_headers
from callcenter.store import Store
from tests.harness import API_KEY, WEBHOOK_SECRET, InProcessController, wait_for

StartController = Callable[..., InProcessController]

SUPPORT = "+18005550100"
SALES = "+18005550199"
BILLING = "+18005550142"
SUNDAY_NIGHT_NY = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # 03:00 in New York
MONDAY_MORNING_NY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York


def example_with(*replacements: tuple[str, str]) -> str:
    """The example config with some lines replaced."""
    text = example_config_path().read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


def stored(controller: InProcessController, call_id: str) -> Store:
    store = controller.services.store
    wait_for(lambda: store.get_call(call_id) is not None, what=f"{call_id} to be stored")
    return store


def wait_final(controller: InProcessController, call_id: str, *statuses: str) -> None:
    store = stored(controller, call_id)
    wait_for(
        lambda: (c := store.get_call(call_id)) is not None and c.status in statuses,
        what=f"{call_id} to reach {statuses}",
    )


def accepts(emulator: EmulatorThread, call_id: str) -> list[int]:
    return [r.status for r in emulator.calls[call_id].rest_requests if r.verb == "accept"]


def signed_post(
    url: str,
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    offset: int = 0,
    webhook_id: str = "wh_test",
) -> httpx.Response:
    headers = webhook_headers(secret, webhook_id, int(time.time()) + offset, body)
    return httpx.post(url, content=body, headers=headers)


# -- answering ----------------------------------------------------------------------------------


def test_a_support_call_is_accepted_with_its_agent(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A call to the support number is accepted with the route's model, voice and instructions."""
    controller = start_controller()
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(5)])
    wait_final(controller, call.call_id, "active")
    body = call.accept_body
    assert body is not None
    assert body["type"] == "realtime"
    assert body["model"] == "gpt-realtime-2"
    assert body["audio"]["output"]["voice"] == "marin"
    assert body["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    assert "Acme" in body["instructions"]
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert (record.route, record.decision, record.outcome) == ("support", "accept", "accepted")
    assert (record.caller_number, record.dialled_number) == ("+14155550123", SUPPORT)


def test_the_live_announcement_of_a_call_is_answered_and_ignored(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """live.transport.incoming (the same call, for the Live API) gets a 2xx "ignored"; the
    call is accepted once, through realtime.call.incoming, with its media security kept."""
    controller = start_controller()
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(5)], media_security="rtp")
    wait_final(controller, call.call_id, "active")

    def live() -> list[WebhookAttempt]:
        attempts = emulator.emulator.webhook_attempts
        return [a for a in attempts if a.event_type == "live.transport.incoming"]

    wait_for(live, what="the live.transport.incoming delivery")
    assert [(a.status, a.response_body) for a in live()] == [
        (200, {"status": "ignored", "type": "live.transport.incoming"})
    ]
    assert accepts(emulator, call.call_id) == [200]
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert record.media_security == "rtp"


def test_an_accepted_call_is_greeted_over_the_sideband(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """After accept the runtime attaches to the sideband and asks for the route's greeting."""
    start_controller()
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(5)])
    wait_for(
        lambda: any(e["type"] == "response.create" for e in call.client_events), what="the greeting"
    )
    greeting = next(e for e in call.client_events if e["type"] == "response.create")
    assert "Thanks for calling Acme support" in greeting["response"]["instructions"]
    assert call.attaches == 1


def test_caller_hanging_up_ends_the_call(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """When the caller hangs up the sideband closes and the call is recorded as ended."""
    controller = start_controller()
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(0.2), HangUp()])
    wait_final(controller, call.call_id, "ended")
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert record.outcome == "hung_up_by_caller"
    assert record.ended_at is not None


def test_deny_listed_caller_is_rejected(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A caller on the deny list is declined with 603 and never accepted."""
    controller = start_controller()
    call = emulator.place_call(from_number="+19005550111", to_number=SUPPORT)
    wait_final(controller, call.call_id, "rejected")
    assert (call.state, call.reject_code) == (CallState.REJECTED, 603)
    assert accepts(emulator, call.call_id) == []


def test_after_hours_call_gets_the_closed_action(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """Sales at 03:00 on a Sunday in New York is closed: 480 Temporarily Unavailable."""
    controller = start_controller(clock=lambda: SUNDAY_NIGHT_NY)
    call = emulator.place_call(to_number=SALES)
    wait_final(controller, call.call_id, "rejected")
    assert call.reject_code == 480


def test_in_hours_call_is_accepted(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """Sales at 10:00 on a Monday in New York answers, with the route's own voice."""
    controller = start_controller(clock=lambda: MONDAY_MORNING_NY)
    call = emulator.place_call(to_number=SALES, script=[Wait(5)])
    wait_final(controller, call.call_id, "active")
    assert call.accept_body is not None
    assert call.accept_body["audio"]["output"]["voice"] == "cedar"


def test_busy_when_full_rejects_with_486(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """At the concurrency cap a new call gets when_full (here 486 Busy Here)."""
    controller = start_controller(
        example_with(
            ("max_concurrent_calls = 200", "max_concurrent_calls = 1"),
            ('when_full = "refer:overflow"', 'when_full = "reject:486"'),
        )
    )
    first = emulator.place_call(to_number=SUPPORT, script=[Wait(10)])
    wait_final(controller, first.call_id, "active")
    second = emulator.place_call(to_number=SUPPORT)
    wait_final(controller, second.call_id, "rejected")
    assert second.reject_code == 486


def test_full_with_an_overflow_target_refers(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """At the cap with when_full = refer:overflow the call is answered and REFERred there."""
    controller = start_controller(
        example_with(
            ("max_concurrent_calls = 200", "max_concurrent_calls = 1"),
        )
    )
    first = emulator.place_call(to_number=SUPPORT, script=[Wait(10)])
    wait_final(controller, first.call_id, "active")
    second = emulator.place_call(to_number=SUPPORT)
    wait_final(controller, second.call_id, "referred")
    assert second.refer_target == "sip:overflow@pbx.example.com"


def test_refer_route_says_the_handoff_then_refers(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """Billing is answered, the handoff line is asked for on the sideband, then REFERred."""
    controller = start_controller()
    call = emulator.place_call(to_number=BILLING)
    wait_final(controller, call.call_id, "referred")
    assert call.refer_target == "sip:billing@pbx.example.com"
    said = [e for e in call.client_events if e["type"] == "response.create"]
    assert "Connecting you to our billing team now." in said[0]["response"]["instructions"]
    refer_at = next(r.at for r in call.rest_requests if r.verb == "refer")
    stopped = [e for e in call.server_events if e["type"] == "output_audio_buffer.stopped"]
    assert stopped, "the handoff line was never played"
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert (record.outcome, record.target) == ("referred", "sip:billing@pbx.example.com")
    assert refer_at > call.created_at


def test_refer_without_handoff_refers_at_once(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A refer route with no handoff line accepts and REFERs at once, then sees the call leave."""
    controller = start_controller(
        example_with(
            ('handoff = "Connecting you to our billing team now."', ""),
        )
    )
    call = emulator.place_call(to_number=BILLING)
    wait_final(controller, call.call_id, "referred")
    assert call.refer_target == "sip:billing@pbx.example.com"
    assert [r.verb for r in call.rest_requests] == ["accept", "refer"]


def test_refer_falls_back_when_the_target_refuses(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """When REFER to the target fails for good, the target's fallback is tried."""
    controller = start_controller(
        example_with(
            ('handoff = "Connecting you to our billing team now."', ""),
        )
    )
    emulator.faults.fail_rest("refer", status=400)
    call = emulator.place_call(to_number=BILLING)
    wait_final(controller, call.call_id, "referred")
    assert call.refer_target == "tel:+14155550111"  # billing-desk falls back to support-desk


def test_refer_route_walks_the_whole_fallback_chain(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """refer:billing-desk goes on past support-desk to overflow, as an escalation would."""
    controller = start_controller(
        example_with(('handoff = "Connecting you to our billing team now."', ""))
    )
    emulator.faults.fail_rest("refer", status=400, times=2)
    call = emulator.place_call(to_number=BILLING)
    wait_final(controller, call.call_id, "referred")
    refers = [r.body.get("target_uri") for r in call.rest_requests if r.verb == "refer"]
    assert refers == [
        "sip:billing@pbx.example.com",
        "tel:+14155550111",
        "sip:overflow@pbx.example.com",
    ]
    assert call.refer_target == "sip:overflow@pbx.example.com"


# -- exactly once -------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrent", [False, True])
@pytest.mark.store_subject
def test_redeliveries_cause_one_accept(
    emulator: EmulatorThread, start_controller: StartController, concurrent: bool
) -> None:
    """Copies of one delivery, one after another or at once, cause exactly one accept."""
    controller = start_controller()
    call = emulator.place_call(
        to_number=SUPPORT, script=[Wait(5)], delivery=Delivery(copies=5, concurrent=concurrent)
    )
    wait_for(lambda: len(call.webhook_attempts) == 5, what="five deliveries")
    wait_final(controller, call.call_id, "active")
    assert accepts(emulator, call.call_id) == [200]
    assert all(a.status == 200 for a in call.webhook_attempts)
    record = controller.services.store.webhook_event(call.webhook_attempts[0].webhook_id)
    assert record is not None
    assert record.deliveries == 5


@pytest.mark.store_subject
def test_retried_delivery_after_a_failure_is_deduplicated(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """A controller that answers 5xx gets the event again; the call is still answered once."""
    controller = start_controller()
    emulator.faults.fail_rest("accept", status=503, times=1)
    call = emulator.place_call(to_number=SUPPORT, script=[Wait(5)])
    wait_final(controller, call.call_id, "active")
    assert accepts(emulator, call.call_id) == [503, 200]


# -- outcomes of the call action ------------------------------------------------------------------


def test_caller_gone_before_accept_is_recorded(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """Accept answered 404 (the caller hung up while it rang): outcome caller_gone, webhook 200."""
    controller = start_controller()
    emulator.emulator.webhook_url = None
    call = emulator.place_call(to_number=SUPPORT)
    emulator.caller_hangs_up(call.call_id)
    emulator.emulator.webhook_url = controller.webhook_url
    event = {
        "id": "evt_gone",
        "object": "event",
        "created_at": int(time.time()),
        "type": "realtime.call.incoming",
        "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
    }
    response = signed_post(controller.webhook_url, json.dumps(event).encode())
    assert response.status_code == 200
    assert response.json()["outcome"] == "caller_gone"
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert (record.status, record.outcome) == ("ended", "caller_gone")  # not our failure


def test_call_answered_elsewhere_is_never_attached(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """Accept answered 409 (another owner took it): outcome conflict, no sideband attach."""
    controller = start_controller()
    emulator.emulator.webhook_url = None
    call = emulator.place_call(to_number=SUPPORT)
    openai.OpenAI(api_key=API_KEY, base_url=emulator.base_url).realtime.calls.accept(
        call.call_id, type="realtime"
    )
    event = {
        "id": "evt_taken",
        "object": "event",
        "created_at": int(time.time()),
        "type": "realtime.call.incoming",
        "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
    }
    response = signed_post(controller.webhook_url, json.dumps(event).encode())
    assert response.json()["outcome"] == "conflict"
    assert call.attaches == 0


def test_accept_failing_for_good_answers_in_time(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """OpenAI failing every accept: the webhook is still answered 200 within the deadline."""
    controller = start_controller(env={"CALLCENTER_CONTROL_DEADLINE": "1"})
    emulator.faults.fail_rest("accept", status=500, times=None)
    emulator.emulator.webhook_url = None
    call = emulator.place_call(to_number=SUPPORT)
    event = {
        "id": "evt_fail",
        "object": "event",
        "created_at": int(time.time()),
        "type": "realtime.call.incoming",
        "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
    }
    started = time.monotonic()
    response = signed_post(controller.webhook_url, json.dumps(event).encode())
    assert time.monotonic() - started < 2.0
    assert (response.status_code, response.json()["outcome"]) == (200, "failed")
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert record.status == "failed"
    assert "500" in (record.error or "")


def test_every_transfer_target_failing_hangs_up(
    emulator: EmulatorThread, start_controller: StartController
) -> None:
    """When every target of the chain refuses the REFER, the call is hung up cleanly."""
    controller = start_controller(
        example_with(('handoff = "Connecting you to our billing team now."', ""))
    )
    emulator.faults.fail_rest("refer", status=400, times=3)
    call = emulator.place_call(to_number=BILLING)
    wait_final(controller, call.call_id, "ended")
    assert [r.verb for r in call.rest_requests] == ["accept", "refer", "refer", "refer", "hangup"]
    assert call.state is CallState.ENDED
    record = controller.services.store.get_call(call.call_id)
    assert record is not None
    assert record.outcome == "transfer_failed"
    kinds = [e.kind for e in controller.services.store.events(call.call_id)]
    assert kinds == ["refer_failed", "refer_failed", "refer_failed", "transfer_failed"]
