"""Test harness: the real controller under a real server, on loopback.

``InProcessController`` serves the Flask app with werkzeug's threaded server in this
process (so a test can pin the clock); ``GunicornController`` runs ``callcenter serve`` in a
subprocess, the way production runs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from callcenter.call.runtime import RuntimeTimeouts
from callcenter.notify.backoff import Backoff
from callcenter.settings import Settings
from callcenter.web.app import EXTENSION, Services, create_app
from callcenter.web.serve_process import ServeProcess

API_KEY = "sk-test-emulator"
# How often a server thread looks at its shutdown flag (socketserver's default: 0.5 s, which
# every stop would wait out half of on average).
SERVE_POLL_INTERVAL = 0.01
# How long the emulator keeps an idle webhook connection (its default: 15 s). A stopping
# gunicorn worker waits up to 2 s for its kept-alive connections to close.
WEBHOOK_KEEPALIVE = 0.2
WEBHOOK_SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWNhbGxjZW50ZXItdGVzdHM="


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class InProcessController:
    """The controller app served by werkzeug in a background thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        runtime_timeouts: RuntimeTimeouts | None = None,
        notify_backoff: Backoff | None = None,
    ) -> None:
        self.app: Flask = create_app(
            settings,
            clock=clock,
            runtime_timeouts=runtime_timeouts,
            notify_backoff=notify_backoff,
        )
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SERVE_POLL_INTERVAL,), daemon=True
        )
        self._thread.start()

    @property
    def webhook_url(self) -> str:
        """Where OpenAI (the emulator) delivers webhooks."""
        return self.url + "/webhooks/openai"

    @property
    def services(self) -> Services:
        """The app's store, runtime and intake."""
        found: Services = self.app.extensions[EXTENSION]
        return found

    def stop(self) -> None:
        """Stop serving and release the app's calls and connections."""
        self._server.shutdown()
        self._thread.join(timeout=5)
        self.services.close()


class GunicornController(ServeProcess):
    """``callcenter serve`` in a subprocess (gunicorn, gthread workers), ready to use."""

    def __init__(self, env: Mapping[str, str], config_path: Path, *, workers: int = 2) -> None:
        super().__init__(env, config_path, workers=workers)
        try:
            self.wait_ready()
        except RuntimeError as exc:
            self.stop()
            raise AssertionError(str(exc)) from exc
