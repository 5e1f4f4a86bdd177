"""Webhook signing and delivery, checked with the SDK's own verification."""

from __future__ import annotations

import re
import time

import openai
import pytest
from openai import OpenAI
from openai.types.webhooks import (
    BatchCompletedWebhookEvent,
    LiveTransportIncomingWebhookEvent,
    RealtimeCallIncomingWebhookEvent,
)

from callcenter.emulator import Delivery, Emulator, sign_webhook

from .helpers import FAST_REDELIVERY, WEBHOOK_SECRET, Receiver

VERIFIER = OpenAI(api_key="unused", webhook_secret=WEBHOOK_SECRET)


def test_sign_webhook_passes_the_sdks_verification() -> None:
    """A signature made with sign_webhook verifies with the SDK."""
    body = '{"id":"evt_1","object":"event","created_at":1,"type":"batch.completed","data":{}}'
    stamp = int(time.time())
    headers = {
        "webhook-id": "wh_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(WEBHOOK_SECRET, "wh_1", stamp, body),
    }
    VERIFIER.webhooks.verify_signature(body, headers)


async def test_a_placed_call_delivers_an_incoming_call_the_sdk_unwraps(
    emulator: Emulator, receiver: Receiver
) -> None:
    """place_call POSTs a signed realtime.call.incoming that unwraps to the SDK's type."""
    call = emulator.place_call(
        from_number="+14155550123",
        to_number="+18005550100",
        caller_name="Ada Lovelace",
        headers=[("X-Ticket", "T-42")],
    )
    await emulator.wait_for(lambda: call.webhook_attempts)
    (received,) = receiver.requests
    event = VERIFIER.webhooks.unwrap(received.body, received.headers)
    assert isinstance(event, RealtimeCallIncomingWebhookEvent)
    assert event.data.call_id == call.call_id
    assert event.id.startswith("evt_")
    assert received.headers["webhook-id"].startswith("wh_")
    assert (
        received.headers["User-Agent"] == "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
    )
    assert received.headers["Content-Type"] == "application/json"
    headers = {h.name: h.value for h in event.data.sip_headers}
    assert headers["From"].startswith('"Ada Lovelace" <sip:+14155550123@')
    assert headers["To"].startswith("<sip:+18005550100@")
    assert {"Call-ID", "Via", "Contact"} <= headers.keys()
    assert headers["X-Ticket"] == "T-42"
    assert event.data.sip_media_security == "srtp"


@pytest.mark.parametrize("security", ["rtp", "srtp", None])
async def test_a_call_is_announced_on_both_surfaces(
    emulator: Emulator, receiver: Receiver, security: str | None
) -> None:
    """Each call comes as realtime.call.incoming and live.transport.incoming, with the same
    INVITE headers and sip_media_security rtp, srtp or left out."""
    emulator.place_call(media_security=security)
    await emulator.wait_for(lambda: receiver.requests and receiver.live)
    realtime = VERIFIER.webhooks.unwrap(receiver.requests[0].body, receiver.requests[0].headers)
    live = VERIFIER.webhooks.unwrap(receiver.live[0].body, receiver.live[0].headers)
    assert isinstance(realtime, RealtimeCallIncomingWebhookEvent)
    assert isinstance(live, LiveTransportIncomingWebhookEvent)
    assert live.data.session_id.startswith("live_")
    assert [h.model_dump() for h in live.data.sip_headers] == [
        h.model_dump() for h in realtime.data.sip_headers
    ]
    assert realtime.data.sip_media_security == live.data.sip_media_security == security
    assert ("sip_media_security" in receiver.requests[0].body.decode()) is (security is not None)


async def test_call_ids_look_like_openais(emulator: Emulator) -> None:
    """Generated call ids are rtc_ followed by 32 hex digits."""
    assert re.fullmatch(r"rtc_[0-9a-f]{32}", emulator.place_call().call_id)


async def test_a_500_is_redelivered_with_the_same_webhook_id(
    emulator: Emulator, receiver: Receiver
) -> None:
    """Non-2xx answers are retried until a 2xx, every attempt signed and with the same id."""
    receiver.statuses.extend([500, 503])
    call = emulator.place_call()
    await emulator.wait_for(lambda: len(call.webhook_attempts) == 3)
    assert [a.status for a in call.webhook_attempts] == [500, 503, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for received in receiver.requests:
        VERIFIER.webhooks.verify_signature(received.body, received.headers)


async def test_redelivery_gives_up_after_max_attempts(
    emulator: Emulator, receiver: Receiver
) -> None:
    """A receiver that always fails sees max_attempts deliveries, then no more."""
    receiver.statuses.extend([500] * 10)
    call = emulator.place_call()
    await emulator.wait_for(lambda: len(call.webhook_attempts) == FAST_REDELIVERY.max_attempts)
    assert [a.attempt for a in call.webhook_attempts] == [1, 2, 3, 4]


async def test_a_slow_receiver_gets_the_event_again(emulator: Emulator, receiver: Receiver) -> None:
    """No answer within the timeout counts as a failure and is retried."""
    receiver.delays.append(1.0)
    call = emulator.place_call()
    await emulator.wait_for(lambda: len(call.webhook_attempts) == 2)
    first, second = call.webhook_attempts
    assert first.status is None
    assert first.error is not None
    assert first.latency >= FAST_REDELIVERY.timeout
    assert second.status == 200


async def test_duplicates_are_sent_one_after_another(
    emulator: Emulator, receiver: Receiver
) -> None:
    """copies=3 delivers the same webhook-id three times, never overlapping."""
    receiver.delays.extend([0.05, 0.05, 0.05])
    call = emulator.place_call(delivery=Delivery(copies=3))
    await emulator.wait_for(lambda: len(call.webhook_attempts) == 3)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert receiver.most_active == 1


async def test_concurrent_duplicates_overlap(emulator: Emulator, receiver: Receiver) -> None:
    """concurrent copies reach the receiver at the same time."""
    receiver.delays.extend([0.2, 0.2, 0.2])
    call = emulator.place_call(delivery=Delivery(copies=3, concurrent=True))
    await emulator.wait_for(lambda: len(call.webhook_attempts) == 3)
    assert receiver.most_active == 3
    assert len({r.body for r in receiver.requests}) == 1


async def test_a_late_timestamp_fails_the_sdks_check(
    emulator: Emulator, receiver: Receiver
) -> None:
    """A timestamp outside the tolerance makes verification fail."""
    call = emulator.place_call(delivery=Delivery(timestamp_offset=-400))
    await emulator.wait_for(lambda: call.webhook_attempts)
    (received,) = receiver.requests
    with pytest.raises(openai.InvalidWebhookSignatureError, match="too old"):
        VERIFIER.webhooks.unwrap(received.body, received.headers)


async def test_a_wrong_secret_fails_the_sdks_check(emulator: Emulator, receiver: Receiver) -> None:
    """A delivery signed with another secret does not verify."""
    call = emulator.place_call(delivery=Delivery(secret="whsec_b3RoZXItc2VjcmV0"))
    await emulator.wait_for(lambda: call.webhook_attempts)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        VERIFIER.webhooks.unwrap(receiver.requests[0].body, receiver.requests[0].headers)


@pytest.mark.parametrize(
    ("event_type", "model"),
    [
        ("batch.completed", BatchCompletedWebhookEvent),
        ("live.transport.incoming", LiveTransportIncomingWebhookEvent),
    ],
)
async def test_other_event_types_unwrap_to_their_sdk_types(
    emulator: Emulator, receiver: Receiver, event_type: str, model: type
) -> None:
    """send_webhook delivers other event types, with plausible data."""
    sent = emulator.send_webhook(event_type)
    await emulator.wait_for(lambda: emulator.webhook_attempts)
    (received,) = receiver.requests + receiver.live
    event = VERIFIER.webhooks.unwrap(received.body, received.headers)
    assert isinstance(event, model)
    assert event.id == sent["id"]
