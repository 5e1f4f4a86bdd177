"""Test harness: the real controller under a real server, on loopback.

``InProcessController`` serves the Flask app with werkzeug's threaded server in this
process (so a test can pin the clock); ``GunicornController`` runs ``callcenter serve`` in a
subprocess, the way production runs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import httpx
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from callcenter.app import EXTENSION, Services, create_app
from callcenter.runtime import RuntimeTimeouts
from callcenter.settings import Settings

API_KEY = "sk-test-emulator"
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class InProcessController:
    """The controller app served by werkzeug in a background thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        runtime_timeouts: RuntimeTimeouts | None = None,
    ) -> None:
        self.app: Flask = create_app(settings, clock=clock, runtime_timeouts=runtime_timeouts)
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
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


class GunicornController:
    """``callcenter serve`` in a subprocess (gunicorn, gthread workers)."""

    def __init__(self, env: Mapping[str, str], config_path: Path, *, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callcenter",
                "--log-level",
                "INFO",
                "--json-logs",
                "serve",
                "--config",
                str(config_path),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
            ],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for(self._ready, timeout=30, what="callcenter serve to be ready")

    @property
    def webhook_url(self) -> str:
        """Where OpenAI (the emulator) delivers webhooks."""
        return self.url + "/webhooks/openai"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("callcenter serve exited:\n" + "".join(self.output))
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int:
        """Stop gunicorn gracefully (SIGTERM) and return its exit code."""
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        finally:
            self._reader.join(timeout=5)
