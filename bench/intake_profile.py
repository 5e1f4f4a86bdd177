"""CPU per call of the intake path, counted so that a loaded machine does not move it.

Wall-clock benches on a shared 2-core machine are noisy; CPU time spent is not (much). This
runs one worker's app (:func:`callcenter.web.app.create_app`, the example config, SQLite in
a temp dir, or with ``--database postgres`` a PostgreSQL schema of its own) in this process
against the emulator in its own process, and hands each call's signed webhook to the real
``Intake.handle``, as a WSGI thread would. Each caller hangs up once the sideband attaches,
so a call's whole life is counted: the webhook, the runtime's start, the sideband, the
records. Calls are placed in the emulator before each round, outside what is counted. Per
call, in CPU microseconds:

- ``before_accept``: the webhook thread from ``Intake.handle`` to the accept request sent
  (verification, parsing, the claim, routing, the accept body);
- ``accept``: the webhook thread inside the accept request (the SDK, httpx);
- ``after_accept``: the webhook thread after the accept's answer until ``handle`` returns
  (what delays the webhook's answer and this thread's next webhook);
- ``webhook_thread``: the sum of the three;
- ``process``: every thread of this process over the round (the runtime, sidebands,
  recorder, lease keeper included), divided by the round's calls.

Each figure is the median over ``--rounds`` rounds of ``--calls`` calls.

    python bench/intake_profile.py --calls 200 --rounds 5 [--database postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
from _machine import run_facts
from _stores import add_store_arguments, database
from sideband import API_KEY, EmulatorProcess

from callcenter.config.loader import example_config_path
from callcenter.emulator.webhooks import (
    incoming_call_event,
    new_webhook_secret,
    sip_headers,
    webhook_headers,
)
from callcenter.observability.logs import configure_logging
from callcenter.settings import Settings
from callcenter.web.app import EXTENSION, Services, create_app
from callcenter.web.server import GIL_SWITCH_INTERVAL

FROM_NUMBER = "+14155550123"
SUPPORT = "+18005550100"  # the example config's support line
PARTS = ("before_accept", "accept", "after_accept", "webhook_thread", "process")


def place(http: httpx.Client, secret: str) -> tuple[bytes, dict[str, str]]:
    """Ring a call that hangs up once attached; return its signed webhook."""
    call_id = "rtc_" + secrets.token_hex(16)
    call = {"call_id": call_id, "from_number": FROM_NUMBER, "to_number": SUPPORT}
    http.post("/_emulator/calls", json={**call, "script": [{"type": "hang_up"}]}).raise_for_status()
    event = incoming_call_event(call_id, sip_headers(call_id, FROM_NUMBER, SUPPORT))
    raw = json.dumps(event).encode()
    return raw, webhook_headers(secret, "wh_" + secrets.token_hex(12), int(time.time()), raw)


class AcceptClock:
    """Notes this thread's CPU time as the accept request starts and ends (bench only)."""

    def __init__(self, services: Services) -> None:
        self.began = self.ended = 0.0
        control = services.intake._control
        accept: Callable[..., None] = control.accept

        def timed(*args: Any, **kw: Any) -> None:
            self.began = time.thread_time()
            try:
                accept(*args, **kw)
            finally:
                self.ended = time.thread_time()

        control.accept = timed  # type: ignore[method-assign]


def serve_like(path: Path) -> IO[str]:
    """Log and switch threads as a ``callcenter serve`` worker does (JSON lines, to ``path``)."""
    log = path.open("w")
    stderr, sys.stderr = sys.stderr, log
    try:
        configure_logging("INFO", json_lines=True)
    finally:
        sys.stderr = stderr
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    return log


def wait_settled(services: Services, timeout: float = 60.0) -> None:
    """Wait until no call is held and the recorder has written everything."""
    if not services.runtime.wait_idle(timeout):
        raise RuntimeError("calls still held after the round")
    if not services.runtime._recorder.flush(timeout):
        raise RuntimeError("the recorder did not catch up")


def one_round(
    services: Services, clock: AcceptClock, http: httpx.Client, secret: str, calls: int
) -> dict[str, float]:
    """CPU microseconds per call of each part, over ``calls`` calls."""
    webhooks = [place(http, secret) for _ in range(calls)]
    sums = dict.fromkeys(PARTS, 0.0)
    started = time.process_time()
    for body, headers in webhooks:
        began = time.thread_time()
        reply = services.intake.handle(body, headers)
        ended = time.thread_time()
        if reply.body.get("outcome") != "accepted":
            raise RuntimeError(f"not accepted: {reply.status} {reply.body}")
        sums["before_accept"] += clock.began - began
        sums["accept"] += clock.ended - clock.began
        sums["after_accept"] += ended - clock.ended
        sums["webhook_thread"] += ended - began
    wait_settled(services)
    sums["process"] = time.process_time() - started
    return {part: round(total / calls * 1e6, 1) for part, total in sums.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the rounds; return the medians and every round."""
    secret = new_webhook_secret()
    with (
        tempfile.TemporaryDirectory(prefix="callcenter-bench-profile-") as scratch,
        contextlib.ExitStack() as stack,
    ):
        emulator = EmulatorProcess(secret, Path(scratch) / "emulator.log")
        try:
            emulator.wait_ready()
            store = database(args.database, Path(scratch), args.postgres_url)
            database_url = stack.enter_context(store)
            environ = {
                "OPENAI_API_KEY": API_KEY,
                "OPENAI_WEBHOOK_SECRET": secret,
                "OPENAI_BASE_URL": emulator.url + "/v1",
                "CALLCENTER_DATABASE_URL": database_url,
                "CALLCENTER_DATA_DIR": scratch,
            }
            log = serve_like(Path(scratch) / "controller.log")
            app = create_app(Settings.from_env(environ, config_path=example_config_path()))
            services: Services = app.extensions[EXTENSION]
            clock = AcceptClock(services)
            try:
                with httpx.Client(base_url=emulator.url, timeout=30.0) as http:
                    one_round(services, clock, http, secret, args.warmup)
                    rounds = [
                        one_round(services, clock, http, secret, args.calls)
                        for _ in range(args.rounds)
                    ]
            finally:
                services.close()
                log.close()
                if args.keep_log is not None:
                    args.keep_log.write_text((Path(scratch) / "controller.log").read_text())
        finally:
            emulator.stop()
    medians = {part: round(statistics.median(r[part] for r in rounds), 1) for part in PARTS}
    return {
        "benchmark": "intake_profile",
        "unit": "CPU microseconds per call",
        "calls_per_round": args.calls,
        "store": args.database,
        "median": medians,
        "rounds": rounds,
        **run_facts(),
    }


def main() -> int:
    """Parse arguments, run, print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=30, help="calls before the first round")
    add_store_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--keep-log", type=Path, default=None, help="keep the controller's log")
    args = parser.parse_args()
    results = run(args)
    text = json.dumps(results, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
