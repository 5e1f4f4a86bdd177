"""Intake benchmark: webhook received → accept sent, at a steady call rate.

Runs the emulator in this process and ``callcenter serve`` (gunicorn, SQLite by default) as
a child process, places calls at ``--rate`` calls per second for ``--seconds``, and reports:

- ``received_to_accept_sent_ms`` (the target): in the controller, from the moment its
  intake starts on a verified-size webhook to the moment it sends the accept (verification,
  parsing, the claim in the store, routing), from its ``webhook handled`` log lines (``act_ms``);
- ``webhook_handling_ms``: the controller's whole handling of the webhook, the accept's
  round trip and the hand-off to the runtime included (``ms`` of the same lines);
- ``end_to_end_ms``: from the moment the emulator sends a call's webhook to the moment it
  has answered the controller's accept (one clock, the emulator's, at both ends: HTTP in and
  out, gunicorn and Flask included);
- errors: deliveries not answered 2xx, calls not accepted, redeliveries.

Each call's caller hangs up right after the sideband attaches, so the load is the intake
path, not long conversations. Results are written as JSON to ``--out``.

    python bench/intake.py --rate 100 --seconds 10 --out bench/results/intake.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import run_facts
from _stores import add_store_arguments, database

from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, EmulatorThread, HangUp, RedeliveryPolicy
from callcenter.emulator.webhooks import new_webhook_secret
from callcenter.web.serve_process import ServeProcess

API_KEY = "sk-bench-emulator"
SUPPORT = "+18005550100"
FROM = os.environ.get("BENCH_FROM", "+14155550123")


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of ``values``, in milliseconds, rounded."""
    if not values:
        return {}
    return {
        "p50": round(percentile(values, 0.50), 2),
        "p90": round(percentile(values, 0.90), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
    }


def place_calls(emulator: EmulatorThread, rate: float, count: int) -> list[str]:
    """Place ``count`` calls at ``rate`` per second; return their ids."""
    call_ids: list[str] = []
    started = time.monotonic()
    for index in range(count):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        call = emulator.place_call(to_number=SUPPORT, script=[HangUp()], from_number=FROM)
        call_ids.append(call.call_id)
    return call_ids


def webhook_to_accept_ms(emulator: EmulatorThread, call_id: str) -> float | None:
    """Milliseconds from the first webhook send to the accept's answer, or None."""
    call = emulator.calls[call_id]
    accepts = [r for r in call.rest_requests if r.verb == "accept" and r.status == 200]
    if not call.webhook_attempts or not accepts:
        return None
    first = min(call.webhook_attempts, key=lambda a: a.at - a.latency)
    return (accepts[0].at - (first.at - first.latency)) * 1000


def controller_timings(output: list[str]) -> tuple[list[float], list[float]]:
    """``act_ms`` and ``ms`` of every ``webhook handled`` line the controller logged."""
    acting, handling = [], []
    for line in output:
        if "webhook handled" not in line or not line.startswith("{"):
            continue
        fields = json.loads(line)
        acting.append(float(fields["act_ms"]))
        handling.append(float(fields["ms"]))
    return acting, handling


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its results."""
    secret = new_webhook_secret()
    with (
        tempfile.TemporaryDirectory(prefix="callcenter-bench-") as scratch,
        database(args.database, Path(scratch), args.postgres_url) as database_url,
    ):
        emulator = EmulatorThread(
            api_key=API_KEY,
            webhook_secret=secret,
            ring_timeout=60,
            redelivery=RedeliveryPolicy(max_attempts=3, base_delay=1.0, timeout=5.0),
        )
        emulator.start()
        env = {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_WEBHOOK_SECRET": secret,
            "OPENAI_BASE_URL": emulator.base_url,
            "CALLCENTER_DATABASE_URL": database_url,
            "CALLCENTER_DATA_DIR": scratch,
        }
        log_file = Path(scratch) / "serve.log"
        server = ServeProcess(env, example_config_path(), workers=args.workers, log_file=log_file)
        try:
            server.wait_ready()
            emulator.emulator.webhook_url = server.webhook_url
            place_calls(emulator, rate=10, count=20)  # warm up connections and caches
            time.sleep(1)
            warm_lines = len(log_file.read_text().splitlines())
            call_ids = place_calls(emulator, args.rate, int(args.rate * args.seconds))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(
                emulator.calls[c].state is CallState.RINGING for c in call_ids
            ):
                time.sleep(0.1)
            latencies = [
                ms for c in call_ids if (ms := webhook_to_accept_ms(emulator, c)) is not None
            ]
            attempts = [a for c in call_ids for a in emulator.calls[c].webhook_attempts]
            server.stop()
            if args.keep_log is not None:
                args.keep_log.write_text(log_file.read_text())
            acting, handling = controller_timings(log_file.read_text().splitlines()[warm_lines:])
            not_accepted = [c for c in call_ids if webhook_to_accept_ms(emulator, c) is None]
            for call_id in not_accepted[:5]:
                call = emulator.calls[call_id]
                print(
                    f"not accepted: {call_id} state={call.state} rest={call.rest_requests} "
                    f"webhooks={[(a.status, a.error) for a in call.webhook_attempts]}",
                    file=sys.stderr,
                )
        finally:
            server.stop()
            emulator.stop()
    return {
        "benchmark": "intake",
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "calls": len(call_ids),
        "accepted": len(latencies),
        "workers": args.workers,
        "store": args.database,
        "received_to_accept_sent_ms": summary(acting),
        "webhook_handling_ms": summary(handling),
        "end_to_end_ms": summary(latencies),
        "errors": {
            "not_accepted": len(call_ids) - len(latencies),
            "non_2xx_deliveries": sum(1 for a in attempts if a.status is None or a.status >= 300),
            "redeliveries": sum(1 for a in attempts if a.attempt > 1),
        },
        **run_facts(),
    }


def main() -> int:
    """Parse arguments, run, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to keep the rate")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    add_store_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench/results/intake.json"))
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the server's log here")
    args = parser.parse_args()
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    ok = results["errors"]["not_accepted"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
