"""The Flask application factory: wires settings, config, store, control, runtime and intake."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import openai
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from openai.resources.realtime.realtime import AsyncRealtimeConnectionManager
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides
from werkzeug.exceptions import HTTPException

from callcenter.call.runtime import LeaseTimings, Runtime, RuntimeTimeouts
from callcenter.config.loader import Config, check_route_tools, load_config, resolve_mcp_headers
from callcenter.control import CallControl, ControlPolicy
from callcenter.errors import StoreError
from callcenter.intake.verify import WebhookVerifier
from callcenter.intake.webhook import Intake, Reply
from callcenter.observability import metrics
from callcenter.operators.api import install_operator_api
from callcenter.operators.console import install_console
from callcenter.settings import Settings
from callcenter.store import Store
from callcenter.store.leases import LeaseStore
from callcenter.tools.registry import load_tools

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024
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
) -> Flask:
    """Build the controller app; reads the environment only when ``settings`` is None."""
    settings = settings or Settings.from_env()
    clock = clock or (lambda: datetime.now(UTC))
    config = resolve_mcp_headers(load_config(settings.config_path), os.environ)
    tools = load_tools(config.tool_modules, default_timeout=config.tool_timeout, file=config.path)
    check_route_tools(config, tools)
    metrics.install()
    store = Store.open(settings.database_url)
    client = openai.OpenAI(
        api_key=settings.openai_api_key, base_url=settings.openai_base_url, max_retries=0
    )
    async_client = openai.AsyncOpenAI(
        api_key=settings.openai_api_key, base_url=settings.openai_base_url
    )
    control = CallControl(client, ControlPolicy(deadline=settings.control_deadline))
    owner = process_owner()

    timeouts = runtime_timeouts or RuntimeTimeouts()

    def connect(
        call_id: str,
        on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None],
    ) -> AsyncRealtimeConnectionManager:
        return async_client.realtime.connect(
            call_id=call_id,
            on_reconnecting=on_reconnecting,
            max_retries=1,  # one reconnect in place; the runtime makes any further attempt
            initial_delay=timeouts.reattach_delay,
        )

    runtime = Runtime(
        store=store,
        control=control,
        connect=connect,
        clock=clock,
        config=config,
        tools=tools,
        timeouts=timeouts,
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
    install_operator_api(app, found, clock=clock, owner=owner)
    install_console(app, settings)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    runtime.open()  # leases kept, and orphaned calls taken over, from now on
    logger.info("controller ready", extra={"owner": owner, "config": config.summary()})
    return app


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
    reply = services().intake.handle(request.get_data(cache=False), dict(request.headers))
    return _json(reply)


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
    """Readiness: the store is reachable and migrated, the config is loaded."""
    found = services()
    if found.draining:
        return jsonify(error={"code": "draining", "message": "This worker is stopping."}), 503
    try:
        found.store.check()
    except StoreError as exc:
        return jsonify(error={"code": "store_unavailable", "message": str(exc)}), 503
    return jsonify(status="ready", config=str(found.settings.config_path)), 200


def _json(reply: Reply) -> tuple[Response, int]:
    return jsonify(reply.body), reply.status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    code = (exc.name or "error").lower().replace(" ", "_")
    status = exc.code or 500
    message = exc.description or exc.name or "Error."
    if status == 413:
        message = f"The body is larger than {MAX_WEBHOOK_BYTES} bytes."
    response = jsonify(error={"code": code, "message": message})
    for name, value in exc.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    logger.exception("unhandled error", extra={"method": request.method, "path": request.path})
    return jsonify(error={"code": "internal_error", "message": "Internal error."}), 500
