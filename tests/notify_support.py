"""A notification receiver on loopback that verifies every POST with ``standardwebhooks``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.harness import SERVE_POLL_INTERVAL

SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NTY3ODk="
SECRET_ENV = "CALLCENTER_TEST_NOTIFY_SECRET"


@dataclass
class Receiver:
    """What the receiver took, and what it answers next (``answers``, then 204)."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)  # verified bodies, in order
    webhook_ids: list[str] = field(default_factory=list)  # of every verified POST
    refused: int = 0  # POSTs that failed verification
    down: bool = False  # answer 503 to everything
    open: threading.Event = field(default_factory=threading.Event)  # cleared: every POST waits
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The verified events of one type."""
        with self.lock:
            return [e for e in self.events if e["type"] == event_type]


@contextmanager
def receiver(secret: str = SECRET) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1:0 until the block ends."""
    state = Receiver()
    state.open.set()
    hook = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.open.wait()
            with state.lock:
                if state.down:
                    self._answer(503, {}, b"down")
                    return
                try:
                    event = hook.verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    state.refused += 1
                    self._answer(400, {}, b"bad signature")
                    return
                state.webhook_ids.append(self.headers["webhook-id"])
                status, headers, text = state.answers.pop(0) if state.answers else (204, {}, b"")
                if 200 <= status < 300:
                    state.events.append(event)
                self._answer(status, headers, text)

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/calls"
    thread = threading.Thread(target=server.serve_forever, args=(SERVE_POLL_INTERVAL,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.open.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def notify_config(url: str, *, events: str = '["call.ended", "call.transferred"]') -> str:
    """A ``[[notify]]`` table for ``url`` (append to a config)."""
    return f'\n[[notify]]\nurl = "{url}"\nsecret = "env:{SECRET_ENV}"\nevents = {events}\n'


def dumps(event: dict[str, Any]) -> str:
    """An event as text, for assertion messages."""
    return json.dumps(event)[:300]
