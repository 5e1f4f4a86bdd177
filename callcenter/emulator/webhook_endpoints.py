"""The Webhook Endpoints API: where a project's webhooks go, and the secrets that sign them.

    POST   /v1/webhook_endpoints                        create {name, url, event_types}
    GET    /v1/webhook_endpoints?after=&limit=          list, newest first (cursor pages)
    GET    /v1/webhook_endpoints/{id}                   retrieve
    POST   /v1/webhook_endpoints/{id}                   update {name?, url?, event_types?}
    DELETE /v1/webhook_endpoints/{id}                   delete
    POST   /v1/webhook_endpoints/{id}/rotate_secret     {keep_old_secret_active_for_24_hours?}
    POST   /v1/webhook_endpoints/{id}/test              {event_type}: one signed sample delivery
    GET    /v1/webhook_event_types                      the event types a project may subscribe to

Answers have the shapes of the SDK's ``openai.types.webhooks`` models; the signing secret
appears only in the answers of create and rotate. Bodies are checked against the SDK's
TypedDicts. URLs must be https, except http to a loopback address (the emulator's own
allowance, so that a local controller can be the endpoint).

The endpoints themselves, their secrets and who receives what are in
:mod:`callcenter.emulator.webhook_registry`.
"""

from __future__ import annotations

import json
import logging
import time
import typing
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from openai.types.webhooks.webhook_create_params import WebhookCreateParams
from openai.types.webhooks.webhook_rotate_secret_params import WebhookRotateSecretParams
from openai.types.webhooks.webhook_test_params import WebhookTestParams
from openai.types.webhooks.webhook_update_params import WebhookUpdateParams

from callcenter.emulator.api_error import ApiError, bad_request
from callcenter.emulator.host import EmulatorHost
from callcenter.emulator.http_errors import bearer_problem, error_response
from callcenter.emulator.ids import hex_id
from callcenter.emulator.state import WebhookAttempt
from callcenter.emulator.validation import check_typed, invalid_value
from callcenter.emulator.webhook_registry import WebhookEndpoint, WebhookEndpoints
from callcenter.emulator.webhooks import (
    USER_AGENT,
    incoming_call_event,
    sample_data,
    sign_webhook,
    sip_headers,
    webhook_event,
)
from callcenter.net import is_loopback

logger = logging.getLogger(__name__)

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_NAME = 256
MAX_URL = 2048


def event_types() -> tuple[str, ...]:
    """Every event type an endpoint may subscribe to, from the SDK's create params."""
    hints = typing.get_type_hints(WebhookCreateParams)
    (literal,) = typing.get_args(hints["event_types"])
    return typing.get_args(literal)


class WebhookEndpointsApi:
    """The aiohttp handlers of the Webhook Endpoints API, acting on their host."""

    def __init__(self, host: EmulatorHost) -> None:
        self._host = host

    @property
    def _endpoints(self) -> WebhookEndpoints:
        return self._host.webhook_endpoints

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the app."""
        one = "/v1/webhook_endpoints/{endpoint_id}"
        return [
            web.post("/v1/webhook_endpoints", _answering(self.create)),
            web.get("/v1/webhook_endpoints", _answering(self.list_endpoints)),
            web.get(one, _answering(self.retrieve)),
            web.post(one, _answering(self.update)),
            web.delete(one, _answering(self.delete)),
            web.post(one + "/rotate_secret", _answering(self.rotate_secret)),
            web.post(one + "/test", _answering(self.test)),
            web.get("/v1/webhook_event_types", _answering(self.list_event_types)),
        ]

    async def create(self, request: web.Request) -> web.Response:
        """Register an endpoint; the answer carries its signing secret, this once."""
        body = await self._body(request, WebhookCreateParams)
        _check_fields(body)
        endpoint = self._endpoints.add(body["name"], body["url"], list(body["event_types"]))
        logger.info(
            "webhook endpoint created", extra={"endpoint": endpoint.id, "url": endpoint.url}
        )
        return web.json_response(endpoint.to_json(with_secret=True))

    async def list_endpoints(self, request: web.Request) -> web.Response:
        """A page of endpoints, newest first, after the ``after`` cursor."""
        self._authorize(request)
        limit = _limit(request.query.get("limit"))
        newest_first = list(reversed(list(self._endpoints)))
        after = request.query.get("after")
        if after:
            ids = [e.id for e in newest_first]
            if after not in ids:
                raise _Refused(invalid_value("after", after, "the id of a listed webhook endpoint"))
            newest_first = newest_first[ids.index(after) + 1 :]
        page = newest_first[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": [e.to_json() for e in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(newest_first) > limit,
            }
        )

    async def retrieve(self, request: web.Request) -> web.Response:
        """One endpoint, without its secret."""
        self._authorize(request)
        return web.json_response(self._endpoint(request).to_json())

    async def update(self, request: web.Request) -> web.Response:
        """Change an endpoint's name, URL or event types."""
        body = await self._body(request, WebhookUpdateParams)
        endpoint = self._endpoint(request)
        _check_fields(body)
        changes = {key: value for key, value in body.items() if getattr(endpoint, key) != value}
        for key, value in changes.items():
            setattr(endpoint, key, list(value) if key == "event_types" else value)
        if changes:
            endpoint.updated_at = int(time.time())
        return web.json_response(endpoint.to_json())

    async def delete(self, request: web.Request) -> web.Response:
        """Forget an endpoint: nothing is delivered to it any more."""
        self._authorize(request)
        endpoint = self._endpoint(request)
        self._endpoints.remove(endpoint.id)
        logger.info("webhook endpoint deleted", extra={"endpoint": endpoint.id})
        return web.json_response(
            {"id": endpoint.id, "object": "webhook_endpoint.deleted", "deleted": True}
        )

    async def rotate_secret(self, request: web.Request) -> web.Response:
        """A new signing secret, in the answer; the old one kept 24 h if asked."""
        body = await self._body(request, WebhookRotateSecretParams)
        endpoint = self._endpoint(request)
        keep_old = bool(body.get("keep_old_secret_active_for_24_hours", False))
        endpoint.rotate(keep_old, time.time())
        logger.info("webhook secret rotated", extra={"endpoint": endpoint.id, "keep_old": keep_old})
        return web.json_response(endpoint.to_json(with_secret=True))

    async def test(self, request: web.Request) -> web.Response:
        """Deliver one signed sample event to the endpoint and report its status."""
        body = await self._body(request, WebhookTestParams)
        endpoint = self._endpoint(request)
        event_type = body["event_type"]
        attempt = await self._deliver_sample(endpoint, event_type)
        if attempt.status is None:
            message = f"The test delivery to {endpoint.url} got no answer: {attempt.error}."
            raise _Refused(bad_request(message, "webhook_test_failed", "webhook_endpoint_id"))
        return web.json_response(
            {
                "object": "webhook_endpoint.test",
                "webhook_endpoint_id": endpoint.id,
                "event_type": event_type,
                "status_code": attempt.status,
                "success": True,
            }
        )

    async def list_event_types(self, request: web.Request) -> web.Response:
        """The event types endpoints may subscribe to."""
        self._authorize(request)
        return web.json_response({"object": "list", "data": list(event_types())})

    # -- helpers -------------------------------------------------------------------------------

    async def _deliver_sample(self, endpoint: WebhookEndpoint, event_type: str) -> WebhookAttempt:
        if event_type == "realtime.call.incoming":
            call_id = hex_id("rtc")
            event = incoming_call_event(
                call_id, sip_headers(call_id, "+14155550123", "+18005550100")
            )
        else:
            event = webhook_event(event_type, sample_data(event_type))
        body = json.dumps(event, separators=(",", ":"))
        webhook_id, timestamp = hex_id("wh"), int(time.time())
        signatures = " ".join(
            sign_webhook(secret, webhook_id, timestamp, body)
            for secret in endpoint.secrets(time.time())
        )
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        timeout = aiohttp.ClientTimeout(total=self._host.redelivery.timeout)
        started, status, problem = time.monotonic(), None, None
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(endpoint.url, data=body, headers=headers) as answer,
            ):
                status = answer.status
                await answer.read()
        except TimeoutError:
            problem = f"no answer within {self._host.redelivery.timeout}s"
        except aiohttp.ClientError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        attempt = WebhookAttempt(
            webhook_id=webhook_id,
            event_type=event_type,
            attempt=1,
            copy=0,
            timestamp=timestamp,
            status=status,
            error=problem,
            latency=time.monotonic() - started,
            at=time.time(),
        )
        self._host.webhook_attempts.append(attempt)
        logger.info(
            "webhook test", extra={"endpoint": endpoint.id, "url": endpoint.url, "status": status}
        )
        return attempt

    def _authorize(self, request: web.Request) -> None:
        problem = bearer_problem(request, self._host.api_key)
        if problem is not None:
            raise _Refused(problem)

    async def _body(self, request: web.Request, schema: Any) -> dict[str, Any]:
        self._authorize(request)
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise _Refused(
                bad_request("The request body is not valid JSON.", "invalid_json")
            ) from None
        if not isinstance(body, dict):
            raise _Refused(bad_request("The request body must be a JSON object.", "invalid_type"))
        problem = check_typed(body, schema)
        if problem is not None:
            raise _Refused(problem)
        return body

    def _endpoint(self, request: web.Request) -> WebhookEndpoint:
        endpoint_id = request.match_info["endpoint_id"]
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is None:
            message = f"No webhook endpoint found with id '{endpoint_id}'."
            raise _Refused(ApiError(404, message, code="not_found", param="webhook_endpoint_id"))
        return endpoint


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive webhooks, or None: https, or http to a loopback address."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "it has no host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return None
    return "webhook endpoints must use https (http only to a loopback address)"


def _check_fields(body: dict[str, Any]) -> None:
    """The limits the TypedDicts cannot say: lengths, a usable URL, at least one event type."""
    name = body.get("name")
    if name is not None and not 1 <= len(name) <= MAX_NAME:
        raise _Refused(invalid_value("name", name, f"a string of 1 to {MAX_NAME} characters"))
    url = body.get("url")
    if url is not None:
        problem = url_problem(url) if len(url) <= MAX_URL else f"longer than {MAX_URL} characters"
        if problem is not None:
            raise _Refused(bad_request(f"Invalid 'url': {url!r}: {problem}.", "invalid_url", "url"))
    if body.get("event_types") == []:
        raise _Refused(invalid_value("event_types", [], "at least one event type"))


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise _Refused(invalid_value("limit", value, f"an integer from 1 to {MAX_PAGE}"))
    return limit


Handler = Callable[[web.Request], Awaitable[web.Response]]


class _Refused(Exception):
    """A request the API answers with an OpenAI-shaped error."""

    def __init__(self, problem: ApiError) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _answering(handler: Handler) -> Handler:
    """``handler``, with a refusal answered as OpenAI's JSON error."""

    async def answer(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except _Refused as refused:
            return error_response(refused.problem)

    return answer
