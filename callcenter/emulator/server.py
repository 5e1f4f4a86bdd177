"""The emulator: OpenAI's side of SIP calls on one aiohttp server, and its handle.

``Emulator`` serves the calls REST endpoints, the sideband WebSocket and the Webhook
Endpoints API under ``/v1`` (point the SDK at ``emulator.base_url``), delivers signed
webhooks to ``webhook_url`` and to the registered endpoints (each signed with its own
secret), and offers a JSON control API under ``/_emulator/``. Tests inspect
``emulator.calls`` and arm ``emulator.faults``. Use it from a running event loop;
``runner.EmulatorThread`` wraps it for synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from callcenter.emulator.caller import CallerScript
from callcenter.emulator.channel import GOING_AWAY, NORMAL_CLOSURE, Channel
from callcenter.emulator.control import ControlApi
from callcenter.emulator.conversation import Conversation
from callcenter.emulator.faults import FaultPlan, TransferFault
from callcenter.emulator.ids import hex_id
from callcenter.emulator.rest import CallsApi
from callcenter.emulator.schema import server_event_problem
from callcenter.emulator.script import Step
from callcenter.emulator.session_state import Pacing, with_server_timings
from callcenter.emulator.sideband import SidebandApi
from callcenter.emulator.state import EmulatedCall, RestRequest, WebhookAttempt
from callcenter.emulator.text_responses import ResponsesApi
from callcenter.emulator.webhook_endpoints import WebhookEndpointsApi
from callcenter.emulator.webhook_registry import WebhookEndpoints
from callcenter.emulator.webhooks import (
    Delivery,
    MediaSecurity,
    RedeliveryPolicy,
    WebhookSender,
    incoming_call_event,
    live_transport_event,
    new_webhook_secret,
    sample_data,
    sip_headers,
    webhook_event,
)
from callcenter.observability.logs import bind_call

logger = logging.getLogger(__name__)

T = TypeVar("T")
CLOSE_TIMEOUT = 1.0
MAX_BODY_BYTES = 16 * 1024 * 1024
# Seconds an idle webhook connection stays open for the next delivery (aiohttp's default).
# A receiver that stops gracefully may wait for its kept-alive connections to close.
WEBHOOK_KEEPALIVE = 15.0


class Emulator:
    """OpenAI's side of SIP calls, served on loopback."""

    def __init__(
        self,
        *,
        api_key: str = "sk-emulator",
        webhook_secret: str | None = None,
        webhook_url: str | None = None,
        ring_timeout: float | None = 30.0,
        redelivery: RedeliveryPolicy | None = None,
        pacing: Pacing | None = None,
        validate_events: bool = False,
        webhook_keepalive: float = WEBHOOK_KEEPALIVE,
    ) -> None:
        # what the controller is configured with
        self.api_key = api_key
        self.webhook_secret = webhook_secret or new_webhook_secret()
        self.webhook_url = webhook_url
        # behaviour
        self.ring_timeout = ring_timeout
        self.redelivery = redelivery or RedeliveryPolicy()
        self.pacing = pacing or Pacing()
        self.validate_events = validate_events
        self.webhook_keepalive = webhook_keepalive
        # records and faults
        self.calls: dict[str, EmulatedCall] = {}
        self.conversations: dict[str, Conversation] = {}
        self.faults = FaultPlan()
        self.responses_requests: list[dict[str, Any]] = []
        self.structured_answers: list[Any] = []
        self.webhook_endpoints = WebhookEndpoints()
        self.rest_requests: list[RestRequest] = []
        self.webhook_attempts: list[WebhookAttempt] = []
        self.event_problems: list[str] = []
        # serving
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give the SDK as ``base_url`` (REST and, through it, the sideband)."""
        return self.url + "/v1"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (0: any free port; read ``.port`` afterwards)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        apis = (
            CallsApi(self),
            SidebandApi(self),
            ControlApi(self),
            WebhookEndpointsApi(self),
            ResponsesApi(self),
        )
        for api in apis:
            app.add_routes(api.routes())
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=4096)
        await site.start()
        self.host, self.port = host, self._runner.addresses[0][1]
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(keepalive_timeout=self.webhook_keepalive)
        )
        logger.info("emulator serving", extra={"url": self.url})

    async def stop(self) -> None:
        """Close every sideband (1001), stop deliveries and timers, stop serving."""
        for timer in self._timers.values():
            timer.cancel()
        for conversation in self.conversations.values():
            conversation.close()
            conversation.channel.close_all(GOING_AWAY)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(
                    *(c.channel.wait_closed() for c in self.conversations.values())
                )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()
        logger.info("emulator stopped", extra={"url": self.url})

    # -- driving calls -------------------------------------------------------------------------

    def place_call(
        self,
        from_number: str = "+14155550123",
        to_number: str = "+18005550100",
        caller_name: str | None = None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        script: Iterable[Step] = (),
        call_id: str | None = None,
        delivery: Delivery | None = None,
        server_timings: str | None = None,
        media_security: MediaSecurity = "srtp",
    ) -> EmulatedCall:
        """Ring a new call and announce it, as OpenAI does, twice: ``realtime.call.incoming``
        (with ``delivery``) and ``live.transport.incoming`` (the Live API's, not recorded on
        the call), to every URL subscribed to each (if any).

        ``server_timings`` ("realistic" or "none") overrides the emulator's server latency for
        this call.
        """
        call_id = call_id or hex_id("rtc")
        extra = headers.items() if isinstance(headers, Mapping) else headers
        call = EmulatedCall(
            call_id,
            from_number,
            to_number,
            caller_name,
            sip_headers(call_id, from_number, to_number, caller_name, extra),
            tuple(script),
            server_timings,
        )
        self.calls[call_id] = call
        if self.ring_timeout is not None:
            loop = asyncio.get_running_loop()
            self._timers[call_id] = loop.call_later(self.ring_timeout, self._ring_out, call)
        with bind_call(call_id):
            logger.info("call ringing", extra={"from_number": from_number, "to_number": to_number})
        event = incoming_call_event(call_id, call.sip_headers, media_security)
        for url in self.webhook_targets(event["type"]):
            self._deliver(url, event, delivery or Delivery(), call)
        live = live_transport_event(hex_id("live"), call.sip_headers, media_security)
        for url in self.webhook_targets(live["type"]):
            self._deliver(url, live, Delivery(), None)
        return call

    def caller_hangs_up(self, call_id: str) -> bool:
        """The caller hangs up (a ringing call is missed). False if the call was already over."""
        call = self.calls.get(call_id)
        if call is None or not call.caller_hangs_up():
            return False
        with bind_call(call_id):
            logger.info("caller hung up")
        self.call_over(call, by_caller=True)
        return True

    def send_webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        delivery: Delivery | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """Deliver any webhook event (``batch.completed``, ``live.transport.incoming``…)."""
        targets = [url] if url else self.webhook_targets(event_type)
        if not targets:
            raise ValueError(
                "send_webhook needs a url: none given, no webhook_url configured "
                f"and no webhook endpoint subscribed to {event_type}"
            )
        event = webhook_event(event_type, data if data is not None else sample_data(event_type))
        for target in targets:
            self._deliver(target, event, delivery or Delivery(), None)
        return event

    def webhook_targets(self, event_type: str) -> list[str]:
        """Where an event goes: ``webhook_url``, then each endpoint subscribed to it, once each."""
        urls = [self.webhook_url] if self.webhook_url else []
        return list(dict.fromkeys(urls + self.webhook_endpoints.subscribed(event_type)))

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109 -- a polling helper: the deadline is its point
    ) -> T:
        """Poll ``predicate`` until truthy; return its value. TimeoutError after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if loop.time() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.005)

    # -- called by the endpoints ---------------------------------------------------------------

    def record_rest(self, request: RestRequest) -> None:
        """Keep one answered calls-endpoint request."""
        self.rest_requests.append(request)
        call = self.calls.get(request.call_id)
        if call is not None:
            call.rest_requests.append(request)
        conversation = self.conversations.get(request.call_id)
        if conversation is not None:
            conversation.noticed(request.verb)

    def call_accepted(self, call: EmulatedCall) -> None:
        """The call was accepted: open its session (and start its script)."""
        self._stop_ringing(call)
        check = self._check_event if self.validate_events else None
        pacing = with_server_timings(self.pacing, call.server_timings)
        conversation = Conversation(call, Channel(call, check), pacing)
        self.conversations[call.call_id] = conversation
        if call.script:
            caller = CallerScript(conversation, call.script, lambda: self._hang_up(call))
            conversation.spawn(caller.run())
        with bind_call(call.call_id):
            logger.info("call accepted")

    def call_over(self, call: EmulatedCall, *, by_caller: bool) -> None:
        """The call ended: the caller's end closes the sideband at once, ours soon after."""
        self._stop_ringing(call)
        conversation = self.conversations.pop(call.call_id, None)
        with bind_call(call.call_id):
            logger.info("call over", extra={"state": call.state.value, "by": call.ended_by})
        if conversation is None:
            return
        conversation.close()
        if by_caller:
            conversation.channel.close_all(NORMAL_CLOSURE)
        else:
            loop = asyncio.get_running_loop()
            loop.call_later(self.pacing.close_delay, conversation.channel.close_all, NORMAL_CLOSURE)

    def refer_relayed(self, call: EmulatedCall, target_uri: str, script: TransferFault) -> None:
        """A REFER got its 200: an answering target takes the call ``script.after`` s later."""
        with bind_call(call.call_id):
            logger.info("refer relayed", extra={"target": target_uri, "result": script.result})
        if script.result != "answered":
            return  # busy or no answer: the call stays with the controller
        loop = asyncio.get_running_loop()
        loop.call_later(script.after, self._transfer_answered, call, target_uri)

    # -- internals ----------------------------------------------------------------------------

    def _transfer_answered(self, call: EmulatedCall, target_uri: str) -> None:
        if call.refer(target_uri) is None:  # still live: the target took it
            self.call_over(call, by_caller=False)

    def _hang_up(self, call: EmulatedCall) -> None:
        self.caller_hangs_up(call.call_id)

    def _ring_out(self, call: EmulatedCall) -> None:
        self._timers.pop(call.call_id, None)
        if call.ring_out():
            with bind_call(call.call_id):
                logger.info("call rang out")

    def _stop_ringing(self, call: EmulatedCall) -> None:
        timer = self._timers.pop(call.call_id, None)
        if timer is not None:
            timer.cancel()

    def _deliver(
        self, url: str, event: dict[str, Any], delivery: Delivery, call: EmulatedCall | None
    ) -> None:
        if self._http is None:
            raise RuntimeError("the emulator is not started")
        secret = self.webhook_endpoints.signing_secret(url) or self.webhook_secret
        sender = WebhookSender(self._http, secret, self.redelivery)

        def record(attempt: WebhookAttempt) -> None:
            self.webhook_attempts.append(attempt)
            if call is not None:
                call.webhook_attempts.append(attempt)

        self._spawn(sender.deliver(url, event, delivery, record))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    def _check_event(self, event: dict[str, Any]) -> None:
        problem = server_event_problem(event)
        if problem is not None:
            self.event_problems.append(problem)
            logger.error("emulator sent an invalid event", extra={"problem": problem})


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("emulator task failed", exc_info=task.exception())
