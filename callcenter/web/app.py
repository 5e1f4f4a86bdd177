"""The Flask application factory: wires settings, config, store, control, runtime and intake."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, cast

import openai
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from openai.resources.realtime.realtime import AsyncRealtimeConnectionManager
from openai.types.websocket_connection_options import WebSocketConnectionOptions
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides
from websockets.uri import get_proxy, parse_uri
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from callcenter.analysis.worker import AnalysisWorker
from callcenter.call.leases import LeaseTimings
from callcenter.call.runtime import Runtime, RuntimeTimeouts
from callcenter.config.loader import (
    Config,
    check_route_tools,
    load_config,
    resolve_mcp_headers,
    resolve_notify_secrets,
)
from callcenter.control import CallControl, ControlPolicy
from callcenter.errors import SchemaError, StoreError
from callcenter.intake.verify import WebhookVerifier
from callcenter.intake.webhook import Intake, WebhookReply
from callcenter.notify.backoff import Backoff
from callcenter.notify.worker import DeliveryWorker
from callcenter.observability import metrics
from callcenter.operators.api import api
from callcenter.operators.console import install_console
from callcenter.operators.services import OPERATORS, OperatorServices
from callcenter.operators.stream import DEFAULT_MAX_STREAMS
from callcenter.settings import Settings
from callcenter.store import Store
from callcenter.store.leases import LeaseStore
from callcenter.store.outbox import Subscribers
from callcenter.tools.registry import load_tools

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024
_TOO_LARGE = f"The body is larger than {MAX_WEBHOOK_BYTES} bytes."
_READ_CHUNK = 64 * 1024
EXTENSION = "callcenter"

bp = Blueprint("callcenter", __name__)


class Services:
    """The long-lived objects of one app (one per gunicorn worker)."""

    def __init__(
        self, *, settings: Settings, config: Config, store: Store, runtime: Runtime, intake: Intake
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.runtime = runtime
        self.intake = intake
        self.on_close: list[Callable[[], None]] = []  # run first by close()
        self.draining = False

    def drain(self) -> None:
        """Stop being ready (/readyz 503) and hand every held call over to another worker."""
        self.draining = True
        self.runtime.drain()

    def close(self) -> None:
        """Release the calls held by this worker and the store's connections."""
        for hook in self.on_close:
            hook()
        self.runtime.shutdown()
        self.store.close()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    runtime_timeouts: RuntimeTimeouts | None = None,
    notify_backoff: Backoff | None = None,
) -> Flask:
    """Build the controller app; reads the environment only when ``settings`` is None."""
    settings = settings or Settings.from_env()
    clock = clock or (lambda: datetime.now(UTC))
    config = resolve_mcp_headers(load_config(settings.config_path), os.environ)
    config = resolve_notify_secrets(config, os.environ)
    tools = load_tools(config.tool_modules, default_timeout=config.tool_timeout, file=config.path)
    check_route_tools(config, tools)
    metrics.install()
    analyses = {route.name: route.analysis for route in config.routes if route.analysis}
    store = Store.open(
        settings.database_url, subscribers=subscribers(config), analysed_routes=analyses
    )
    client = openai.OpenAI(
        api_key=settings.openai_api_key, base_url=settings.openai_base_url, max_retries=0
    )
    async_client = openai.AsyncOpenAI(
        api_key=settings.openai_api_key, base_url=settings.openai_base_url
    )
    control = CallControl(client, ControlPolicy(deadline=settings.control_deadline))
    owner = process_owner()

    timeouts = runtime_timeouts or RuntimeTimeouts()
    sideband_options = sideband_connection_options(async_client)

    def connect(
        call_id: str,
        on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None],
    ) -> AsyncRealtimeConnectionManager:
        return async_client.realtime.connect(
            call_id=call_id,
            on_reconnecting=on_reconnecting,
            max_retries=1,  # one reconnect in place; the runtime makes any further attempt
            initial_delay=timeouts.reattach_delay,
            websocket_connection_options=sideband_options,
        )

    runtime = Runtime(
        store=store,
        control=control,
        connect=connect,
        clock=clock,
        config=config,
        tools=tools,
        timeouts=timeouts,
        spill_dir=settings.data_dir / "spill",
        leases=LeaseStore(store),
        owner=owner,
        lease_timings=LeaseTimings.for_ttl(settings.lease_seconds),
    )
    intake = Intake(
        config=config,
        tools=tools,
        store=store,
        control=control,
        runtime=runtime,
        verifier=WebhookVerifier(client, settings.webhook_secrets),
        owner=owner,
        clock=clock,
    )
    app = Flask("callcenter")
    app.config["MAX_CONTENT_LENGTH"] = MAX_WEBHOOK_BYTES
    found = Services(settings=settings, config=config, store=store, runtime=runtime, intake=intake)
    app.extensions[EXTENSION] = found
    app.register_blueprint(bp)
    operators = OperatorServices(
        store=store,
        runtime=runtime,
        config=config,
        tokens=settings.operator_tokens,
        clock=clock,
        owner=owner,
        max_streams=settings.max_streams or DEFAULT_MAX_STREAMS,
    )
    app.extensions[OPERATORS] = operators
    app.register_blueprint(api)
    install_console(app, settings)
    operators.poller.start()
    found.on_close.append(operators.poller.stop)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreError, _store_error)
    app.register_error_handler(Exception, _unexpected_error)
    runtime.open()  # leases kept, and orphaned calls taken over, from now on
    if config.notify:
        worker = DeliveryWorker(
            store, config.notify, owner=owner, clock=clock, backoff=notify_backoff
        )
        worker.start()
        found.on_close.append(worker.stop)
    if analyses:
        analysis_client = openai.OpenAI(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=30.0,
            max_retries=2,
        )
        analyst = AnalysisWorker(store, analysis_client, analyses, clock=clock)
        analyst.start()
        found.on_close.append(analyst.stop)
    logger.info(
        "controller ready",
        extra={"owner": owner, "max_streams": operators.streams.limit, "config": config.summary()},
    )
    return app


def sideband_connection_options(client: openai.AsyncOpenAI) -> WebSocketConnectionOptions:
    """The sideband's websockets options: its proxy, looked up once at start-up.

    websockets looks the proxy up in the environment on every connect by default (a walk of
    ``os.environ``, twice per call); the answer is the same for every call, so it is taken
    once here, with websockets' own rules, and passed as ``proxy`` (None: connect directly).
    """
    base = str(client.websocket_base_url or client.base_url)
    url = re.sub(r"^http", "ws", base.rstrip("/")) + "/realtime"
    proxy = get_proxy(parse_uri(url))
    # ``proxy`` is a keyword of websockets' connect that the SDK's TypedDict does not list.
    return cast(WebSocketConnectionOptions, {"proxy": proxy})


def subscribers(config: Config) -> Subscribers:
    """Who takes each notification: the ``[[notify]]`` receivers that want it."""

    def wanting(event_type: str, route: str | None) -> list[str]:
        return [e.url for e in config.notify if e.wants(event_type, route)]

    return wanting


def process_owner() -> str:
    """An owner id for leases and claims, unique per process start (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def services() -> Services:
    """The services of the current app."""
    found: Services = current_app.extensions[EXTENSION]
    return found


@bp.post("/webhooks/openai")
def webhook() -> tuple[Response, int]:
    """Receive a signed OpenAI webhook."""
    intake = services().intake
    # Let one byte past the limit through werkzeug's own cap (which, on a chunked body, stops
    # at the limit without a word), so that the count below sees it.
    request.max_content_length = MAX_WEBHOOK_BYTES + 1
    try:
        body = _read_body(request.stream, MAX_WEBHOOK_BYTES)
    except RequestEntityTooLarge:
        reply = intake.refuse(413, "request_entity_too_large", _TOO_LARGE)
    except ClientDisconnected:
        reply = intake.refuse(400, "incomplete_body", "The body ended before its length.")
    else:
        reply = intake.handle(body, dict(request.headers))
    return _json(reply)


def _read_body(stream: IO[bytes], limit: int) -> bytes:
    """The whole body, counted as it arrives; RequestEntityTooLarge past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(min(_READ_CHUNK, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Liveness: the process answers."""
    return jsonify(status="ok"), 200


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus metrics of this node (every worker's, merged)."""
    body, content_type = metrics.exposition()
    return Response(body, status=200, content_type=content_type)


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: not draining, and the store answers and is migrated (config loaded at start).

    The answer names the failing check with a fixed code, never the driver's text (host,
    port, database) or a path; the detail goes to the log.
    """
    found = services()
    if found.draining:
        error = {"code": "draining", "message": "This worker is stopping."}
        return jsonify(ready=False, checks={"worker": "draining"}, error=error), 503
    store = _store_readiness(found.store)
    if store != "ok":
        error = {"code": f"store_{store}", "message": NOT_READY[store]}
        return jsonify(ready=False, checks={"store": store}, error=error), 503
    return jsonify(status="ready", ready=True, checks={"store": "ok"}), 200


NOT_READY = {
    "unreachable": "The store does not answer.",
    "not_migrated": "The store is not migrated; run `callcenter migrate`.",
}


def _store_readiness(store: Store) -> str:
    try:
        store.check()
    except SchemaError as exc:
        logger.warning("not ready", extra={"check": "store", "error": str(exc)})
        return "not_migrated"
    except StoreError as exc:
        logger.warning("not ready", extra={"check": "store", "error": str(exc)})
        return "unreachable"
    return "ok"


def _json(reply: WebhookReply) -> tuple[Response, int]:
    return jsonify(reply.body), reply.status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    code = (exc.name or "error").lower().replace(" ", "_")
    status = exc.code or 500
    message = exc.description or exc.name or "Error."
    if status == 413:
        message = _TOO_LARGE
    response = jsonify(error={"code": code, "message": message})
    for name, value in exc.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status


def _store_error(exc: StoreError) -> tuple[Response, int]:
    logger.warning(
        "store unavailable",
        extra={"method": request.method, "path": request.path, "error": str(exc)},
    )
    body = {"code": "store_unavailable", "message": "The store does not answer; retry later."}
    return jsonify(error=body), 503


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    logger.exception("unhandled error", extra={"method": request.method, "path": request.path})
    return jsonify(error={"code": "internal_error", "message": "Internal error."}), 500
