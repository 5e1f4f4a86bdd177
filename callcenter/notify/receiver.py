"""A notification receiver on loopback that verifies each POST: for the demo and for users.

It stands where the company's CRM would, verifying signatures with the ``standardwebhooks``
package (as any receiver's library would) and keeping the events it took.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["Receiver"]

_MAX_BODY = 4 * 1024 * 1024
STOP_POLL_INTERVAL = 0.05  # seconds between looks at the shutdown flag (default 0.5)


class Receiver:
    """Listens on 127.0.0.1 (any free port) until stopped; ``on_event`` sees each event."""

    def __init__(self, secret: str, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        self._lock = threading.Lock()
        hook = Webhook(secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), _MAX_BODY)
                body = self.rfile.read(length)
                try:
                    event = hook.verify(body, dict(self.headers.items()))
                except (WebhookVerificationError, json.JSONDecodeError):
                    with receiver._lock:
                        receiver.refused += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.events.append(event)
                on_event(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # the demo prints what arrives, not an access log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/calls"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(STOP_POLL_INTERVAL,),
            name="callcenter-receiver",
            daemon=True,
        )

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The verified events of one type, in arrival order."""
        with self._lock:
            return [e for e in self.events if e.get("type") == event_type]
