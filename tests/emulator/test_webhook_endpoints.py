"""The emulated Webhook Endpoints API, driven through the SDK's ``client.webhooks``."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.webhooks import WebhookEndpointWithSecret

from callcenter.emulator import Emulator

from .helpers import API_KEY, WEBHOOK_SECRET, Receiver

CALLS = ["realtime.call.incoming"]


async def created(
    client: AsyncOpenAI, url: str, name: str = "callcenter"
) -> WebhookEndpointWithSecret:
    """A new endpoint at ``url`` subscribed to incoming calls."""
    return await client.webhooks.create(url=url, name=name, event_types=["realtime.call.incoming"])


def verifies(received_headers: dict[str, str], body: bytes, secret: str) -> bool:
    """Whether the SDK accepts a received delivery as signed with ``secret``."""
    try:
        openai.OpenAI(api_key="unused").webhooks.verify_signature(
            body, received_headers, secret=secret
        )
    except openai.InvalidWebhookSignatureError:
        return False
    return True


async def test_create_answers_the_endpoint_with_its_secret(
    client: AsyncOpenAI, receiver: Receiver
) -> None:
    """Create returns a webhook_endpoint with a whsec_ secret and a hint of it."""
    endpoint = await created(client, receiver.url, name="support line")
    assert endpoint.object == "webhook_endpoint"
    assert (endpoint.name, endpoint.url, endpoint.event_types) == (
        "support line",
        receiver.url,
        CALLS,
    )
    assert endpoint.signing_secret.startswith("whsec_")
    assert endpoint.signing_secret_hint is not None
    assert endpoint.signing_secret_hint.endswith(endpoint.signing_secret[-4:])
    assert endpoint.created_at == endpoint.updated_at


async def test_secret_appears_only_in_create_and_rotate(
    client: AsyncOpenAI, receiver: Receiver, emulator: Emulator
) -> None:
    """Retrieve, list and update answers carry no signing_secret."""
    endpoint = await created(client, receiver.url)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    base = emulator.base_url + "/webhook_endpoints"
    async with httpx.AsyncClient(headers=headers) as http:
        one = (await http.get(f"{base}/{endpoint.id}")).json()
        listed = (await http.get(base)).json()
        updated = (await http.post(f"{base}/{endpoint.id}", json={"name": "renamed"})).json()
    assert "signing_secret" not in one
    assert "signing_secret" not in listed["data"][0]
    assert "signing_secret" not in updated
    assert endpoint.signing_secret not in str([one, listed, updated])


@pytest.mark.parametrize(
    "url",
    ["http://callcenter.example.com/webhooks/openai", "ftp://127.0.0.1/x", "https:///no-host"],
)
async def test_create_refuses_urls_that_are_not_https(client: AsyncOpenAI, url: str) -> None:
    """Only https URLs, or http to a loopback address, may receive webhooks."""
    with pytest.raises(openai.BadRequestError) as refused:
        await created(client, url)
    assert refused.value.code == "invalid_url"
    assert refused.value.param == "url"


async def test_create_accepts_http_to_loopback(client: AsyncOpenAI) -> None:
    """http://localhost and http://127.0.0.1 are allowed, for a controller on this machine."""
    for url in ("http://localhost:8080/webhooks/openai", "http://[::1]:8080/webhooks/openai"):
        assert (await created(client, url)).url == url


async def test_create_checks_the_body_against_the_sdk_params(client: AsyncOpenAI) -> None:
    """Unknown event types, missing names and unknown parameters are 400s naming the param."""
    url = "https://callcenter.example.com/webhooks/openai"
    with pytest.raises(openai.BadRequestError) as unknown_type:
        await client.webhooks.create(url=url, name="x", event_types=["call.rang"])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError) as no_types:
        await client.webhooks.create(url=url, name="x", event_types=[])
    with pytest.raises(openai.BadRequestError) as stray:
        await client.webhooks.create(
            url=url, name="x", event_types=["batch.completed"], extra_body={"secret": "mine"}
        )
    assert (unknown_type.value.param, no_types.value.param, stray.value.param) == (
        "event_types[0]",
        "event_types",
        "secret",
    )


async def test_list_pages_newest_first(client: AsyncOpenAI) -> None:
    """Pages go newest first, with first_id, last_id and has_more; the SDK walks them all."""
    ids = [(await created(client, f"https://n{i}.example.com/hook")).id for i in range(5)]
    page = await client.webhooks.list(limit=2)
    assert [e.id for e in page.data] == [ids[4], ids[3]]
    assert page.has_more
    walked = [endpoint.id async for endpoint in await client.webhooks.list(limit=2)]
    assert walked == list(reversed(ids))
    last = await client.webhooks.list(limit=2, after=ids[1])
    assert [e.id for e in last.data] == [ids[0]]
    assert not last.has_more


async def test_update_changes_the_endpoint_and_its_updated_at(
    client: AsyncOpenAI, emulator: Emulator
) -> None:
    """An update changes the URL and advances updated_at; an unchanged one does not."""
    endpoint = await created(client, "https://old.example.com/hook")
    stored = emulator.webhook_endpoints.get(endpoint.id)
    assert stored is not None
    stored.updated_at = long_ago = 1_700_000_000
    same = await client.webhooks.update(endpoint.id, name=endpoint.name)
    moved = await client.webhooks.update(endpoint.id, url="https://new.example.com/hook")
    assert same.updated_at == long_ago
    assert moved.url == "https://new.example.com/hook"
    assert moved.updated_at is not None
    assert moved.updated_at > long_ago


async def test_delete_forgets_the_endpoint(client: AsyncOpenAI) -> None:
    """A deleted endpoint is gone: retrieving it is a 404."""
    endpoint = await created(client, "https://gone.example.com/hook")
    deleted = await client.webhooks.delete(endpoint.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        endpoint.id,
        True,
        "webhook_endpoint.deleted",
    )
    with pytest.raises(openai.NotFoundError):
        await client.webhooks.retrieve(endpoint.id)


async def test_calls_to_an_endpoint_url_are_signed_with_its_secret(
    client: AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    """A call delivered to a registered URL verifies with that endpoint's secret."""
    endpoint = await created(client, receiver.url)
    emulator.place_call()
    await emulator.wait_for(lambda: receiver.requests)
    delivery = receiver.requests[0]
    assert verifies(delivery.headers, delivery.body, endpoint.signing_secret)
    assert not verifies(delivery.headers, delivery.body, WEBHOOK_SECRET)


async def test_subscribed_endpoints_receive_events_without_a_webhook_url(
    client: AsyncOpenAI, emulator: Emulator, receiver: Receiver
) -> None:
    """With no webhook_url, a call still reaches the endpoints subscribed to calls."""
    emulator.webhook_url = None
    await created(client, receiver.url)
    await client.webhooks.create(
        url="https://batches.example.com/hook", name="batches", event_types=["batch.completed"]
    )
    call = emulator.place_call()
    await emulator.wait_for(lambda: call.webhook_attempts)
    assert [a.status for a in call.webhook_attempts] == [200]
    assert len(receiver.requests) == 1


async def test_test_delivers_a_signed_sample_and_reports_the_status(
    client: AsyncOpenAI, receiver: Receiver
) -> None:
    """`test` posts a signed sample event and answers the receiver's status code."""
    endpoint = await created(client, receiver.url)
    receiver.statuses.append(503)
    result = await client.webhooks.test(endpoint.id, event_type="realtime.call.incoming")
    assert (result.object, result.webhook_endpoint_id, result.event_type) == (
        "webhook_endpoint.test",
        endpoint.id,
        "realtime.call.incoming",
    )
    assert (result.status_code, result.success) == (503, True)
    delivery = receiver.requests[-1]
    assert verifies(delivery.headers, delivery.body, endpoint.signing_secret)
    assert b'"type":"realtime.call.incoming"' in delivery.body


async def test_test_without_an_answer_is_an_error(client: AsyncOpenAI) -> None:
    """A test delivery nobody answers is a 400 saying so, not a status code."""
    endpoint = await created(client, "http://127.0.0.1:9/webhooks/openai")
    with pytest.raises(openai.BadRequestError) as failed:
        await client.webhooks.test(endpoint.id, event_type="batch.completed")
    assert failed.value.code == "webhook_test_failed"


async def test_rotation_keeping_the_old_secret_signs_with_both(
    client: AsyncOpenAI, receiver: Receiver
) -> None:
    """After a rotation that keeps the old secret, a test delivery verifies with either."""
    endpoint = await created(client, receiver.url)
    rotated = await client.webhooks.rotate_secret(
        endpoint.id, keep_old_secret_active_for_24_hours=True
    )
    assert rotated.signing_secret != endpoint.signing_secret
    await client.webhooks.test(endpoint.id, event_type="batch.completed")
    delivery = receiver.requests[-1]
    assert verifies(delivery.headers, delivery.body, rotated.signing_secret)
    assert verifies(delivery.headers, delivery.body, endpoint.signing_secret)


async def test_rotation_without_keeping_drops_the_old_secret(
    client: AsyncOpenAI, receiver: Receiver
) -> None:
    """A plain rotation signs with the new secret only."""
    endpoint = await created(client, receiver.url)
    rotated = await client.webhooks.rotate_secret(endpoint.id)
    await client.webhooks.test(endpoint.id, event_type="batch.completed")
    delivery = receiver.requests[-1]
    assert verifies(delivery.headers, delivery.body, rotated.signing_secret)
    assert not verifies(delivery.headers, delivery.body, endpoint.signing_secret)


async def test_event_types_list_what_endpoints_may_subscribe_to(client: AsyncOpenAI) -> None:
    """The event types list is a list object that includes realtime.call.incoming."""
    found = await client.webhooks.event_types.list()
    assert found.object == "list"
    assert "realtime.call.incoming" in found.data


async def test_endpoints_api_needs_the_api_key(emulator: Emulator) -> None:
    """A wrong key is a 401, as on the calls endpoints."""
    async with AsyncOpenAI(api_key="sk-wrong", base_url=emulator.base_url, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.webhooks.list()


async def test_unknown_endpoint_is_a_404(client: AsyncOpenAI) -> None:
    """Rotating the secret of an unknown endpoint id is a 404."""
    with pytest.raises(openai.NotFoundError):
        await client.webhooks.rotate_secret("we_missing")
