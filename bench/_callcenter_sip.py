"""callcenter as ``bench/sideband.py`` runs it: the app of one worker, minus the HTTP server.

The worker is built by :func:`callcenter.web.app.create_app` from a config whose one route
greets the caller and offers the no-op tool, with a SQLite store in a temp dir. Each call's
signed webhook goes to the app's real intake (verification, claim, routing, the accept
through the REST endpoint), which hands the call to the app's real runtime: its loop
thread, the sideband executor and the session. The bench loop stands in for the WSGI
thread that would call the intake. The process's GIL switch interval is the one a gunicorn
worker sets (``callcenter.web.server.GIL_SWITCH_INTERVAL``), so that a thread waiting for the
GIL (the runtime's loop, behind an intake thread) waits as long as in production.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _sideband_ramp import GREETING, INSTRUCTIONS, TOOL_NAME, Emulator

from callcenter.settings import Settings
from callcenter.store import Store, default_sqlite_url
from callcenter.web.app import EXTENSION, Services, create_app
from callcenter.web.server import GIL_SWITCH_INTERVAL

CONFIG = f"""
tool_modules = ["_sideband_tools"]
default_route = "bench"

[limits]
max_concurrent_calls = 100000

[[routes]]
name = "bench"
instructions = "{INSTRUCTIONS}"
greeting = "{GREETING}"
tools = ["{TOOL_NAME}"]
"""


class CallcenterDriver:
    """One callcenter worker holding the bench's calls."""

    def __init__(self, emulator: Emulator) -> None:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # as the worker's post_fork does
        self._scratch = tempfile.TemporaryDirectory(prefix="callcenter-bench-sideband-")
        scratch = Path(self._scratch.name)
        config = scratch / "callcenter.toml"
        config.write_text(CONFIG)
        database_url = default_sqlite_url(scratch)
        with Store.open(database_url) as store:
            store.migrate()
        environ = {
            "OPENAI_API_KEY": emulator.api_key,
            "OPENAI_WEBHOOK_SECRET": emulator.webhook_secret,
            "OPENAI_BASE_URL": emulator.url + "/v1",
            "CALLCENTER_DATABASE_URL": database_url,
            "CALLCENTER_DATA_DIR": str(scratch),
        }
        app = create_app(Settings.from_env(environ, config_path=config))
        self._services: Services = app.extensions[EXTENSION]

    async def start_call(self, call_id: str, body: bytes, headers: dict[str, str]) -> None:
        """The intake handles the webhook (blocking, as a WSGI thread would)."""
        reply = self._services.intake.handle(body, headers)
        if reply.body.get("outcome") != "accepted":
            raise RuntimeError(f"not accepted: {reply.status} {reply.body}")

    async def close(self) -> None:
        """Release the calls (the runtime cancels their sessions), close the store."""
        self._services.close()
        self._scratch.cleanup()


async def make_driver(emulator: Emulator) -> CallcenterDriver:
    """The driver for :func:`_sideband_ramp.run_system`."""
    return CallcenterDriver(emulator)
