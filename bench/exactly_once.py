"""Exactly-once benchmark: concurrent redeliveries of each call's webhook, one accept per call.

Runs the emulator in this process and ``callcenter serve`` (gunicorn, ``--workers``
workers) as a child process, on SQLite (a file in a temp dir) or PostgreSQL (a fresh schema
of its own, dropped at the end). It places ``--calls`` calls at ``--rate`` calls per second;
each call's ``realtime.call.incoming`` webhook is delivered as ``--copies`` concurrent copies
of the same delivery (one ``webhook-id``), on connections of their own that gunicorn's
workers take as they come. Once every copy is answered (2xx, or its redeliveries given up),
it counts per call:

- the accepts the emulator answered 200 (``calls_with_exactly_one_accept``, ``_zero``,
  ``_more``), and accept requests answered otherwise;
- the controller's answer to every webhook attempt: by HTTP status (``answer_status_counts``,
  ``"none"`` for no answer in time) and by what its JSON says (``answer_kind_counts``:
  ``handled:accepted`` for the copy that accepted, ``duplicate`` for the others);
- how long the answers took (``answer_latency_ms``), 5xx answers, redeliveries and copies
  left unanswered at the deadline.

Each caller hangs up 0.2 s after its sideband attaches, so the concurrency cap is not the
limit (the config is the example config with the cap raised). Results are written as JSON
to ``--out``; the exit status is 1 unless every call got exactly one accept, no attempt was
answered 5xx and every copy was answered.

    python bench/exactly_once.py --calls 1000 --copies 5 --workers 4 --database sqlite \\
        --out bench/results/exactly_once-sqlite.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import tomli_w
from _machine import run_facts
from _stores import add_store_arguments, database

from callcenter.config.loader import example_config_path
from callcenter.emulator import (
    CallState,
    Delivery,
    EmulatedCall,
    EmulatorThread,
    HangUp,
    RedeliveryPolicy,
    Wait,
    WebhookAttempt,
)
from callcenter.emulator.webhooks import new_webhook_secret
from callcenter.web.serve_process import ServeProcess

API_KEY = "sk-bench-emulator"
SUPPORT = "+18005550100"
FROM = os.environ.get("BENCH_FROM", "+14155550123")
MAX_CONCURRENT_CALLS = 100_000
# A copy answered non-2xx is tried again, as OpenAI would; a late answer counts as none.
REDELIVERY = RedeliveryPolicy(max_attempts=3, base_delay=0.5, max_delay=2.0, timeout=10.0)


def write_config(directory: Path) -> Path:
    """The example config with ``limits.max_concurrent_calls`` raised, written to ``directory``."""
    source = example_config_path()
    data: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    data.setdefault("limits", {})["max_concurrent_calls"] = MAX_CONCURRENT_CALLS
    path = directory / "callcenter-exactly-once.toml"
    path.write_text(
        f"# {source.name} with limits.max_concurrent_calls = {MAX_CONCURRENT_CALLS}, "
        "written by bench/exactly_once.py.\n" + tomli_w.dumps(data),
        encoding="utf-8",
    )
    return path


def place_calls(emulator: EmulatorThread, rate: float, count: int, copies: int) -> list[str]:
    """Place ``count`` calls at ``rate`` per second, each webhook in concurrent copies."""
    call_ids: list[str] = []
    started = time.monotonic()
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        call = emulator.place_call(
            to_number=SUPPORT,
            from_number=FROM,
            script=[Wait(0.2), HangUp()],
            delivery=Delivery(copies=copies, concurrent=True),
        )
        call_ids.append(call.call_id)
    return call_ids


def percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of the sorted ``ordered`` (nearest rank)."""
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def latency_ms(attempts: list[WebhookAttempt]) -> dict[str, float]:
    """p50, p99 and max of the answered attempts' answer times, in milliseconds."""
    ordered = sorted(a.latency * 1000 for a in attempts if a.status is not None)
    if not ordered:
        return {}
    return {
        "p50": round(percentile(ordered, 0.50), 1),
        "p99": round(percentile(ordered, 0.99), 1),
        "max": round(ordered[-1], 1),
    }


def copies_answered(call: EmulatedCall) -> int:
    """How many of the call's copies are done: answered 2xx, or given up."""
    done = {
        a.copy
        for a in call.webhook_attempts
        if (a.status is not None and 200 <= a.status < 300) or a.attempt >= REDELIVERY.max_attempts
    }
    return len(done)


def wait_until(condition: Any, within: float) -> bool:
    """Poll ``condition()`` until it holds or ``within`` seconds pass; whether it held."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def accepts(call: EmulatedCall) -> int:
    """Accept requests the emulator answered 200 for ``call``."""
    return sum(1 for r in call.rest_requests if r.verb == "accept" and r.status == 200)


def answer_kind(body: Any) -> str:
    """The controller's JSON answer as one word: its ``status``, and the ``outcome`` if any."""
    if not isinstance(body, dict):
        return "not json"
    kind = str(body.get("status", "error" if "error" in body else "?"))
    return f"{kind}:{body['outcome']}" if "outcome" in body else kind


def source_revision() -> dict[str, Any]:
    """The commit of the code under test, and whether ``callcenter/`` has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "callcenter"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "callcenter_uncommitted": None}
    return {"commit": commit, "callcenter_uncommitted": [line[3:] for line in changed]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its results."""
    secret = new_webhook_secret()
    with (
        tempfile.TemporaryDirectory(prefix="callcenter-bench-once-") as scratch,
        database(args.database, Path(scratch), args.postgres_url) as database_url,
    ):
        emulator = EmulatorThread(
            api_key=API_KEY, webhook_secret=secret, ring_timeout=60, redelivery=REDELIVERY
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
        config = write_config(Path(scratch))
        server = ServeProcess(env, config, workers=args.workers, log_file=log_file)
        try:
            server.wait_ready()
            emulator.emulator.webhook_url = server.webhook_url
            began = time.monotonic()
            call_ids = place_calls(emulator, args.rate, args.calls, args.copies)
            placed_s = time.monotonic() - began
            calls = [emulator.calls[c] for c in call_ids]
            all_answered = wait_until(
                lambda: all(copies_answered(c) == args.copies for c in calls), args.deadline
            )
            duration_s = time.monotonic() - began
            wait_until(lambda: all(c.state is CallState.ENDED for c in calls), 30)
            server.stop()
            if args.keep_log is not None:
                args.keep_log.write_text(log_file.read_text())
        finally:
            server.stop()
            emulator.stop()
    per_call = Counter(accepts(c) for c in calls)
    attempts = [a for c in calls for a in c.webhook_attempts]
    statuses = Counter("none" if a.status is None else str(a.status) for a in attempts)
    answers = Counter(answer_kind(a.response_body) for a in attempts)
    requests = [r for c in calls for r in c.rest_requests if r.verb == "accept"]
    other_accepts = Counter(str(r.status) for r in requests if r.status != 200)
    odd = [c for c in calls if accepts(c) != 1]
    for call in odd[:5]:
        print(
            f"{accepts(call)} accepts: {call.call_id} state={call.state} "
            f"rest={[(r.verb, r.status) for r in call.rest_requests]} "
            f"webhooks={[(a.copy, a.attempt, a.status, a.error) for a in call.webhook_attempts]}",
            file=sys.stderr,
        )
    return {
        "benchmark": "exactly_once",
        "calls": len(calls),
        "copies": args.copies,
        "workers": args.workers,
        "database": args.database,
        "rate_per_s": args.rate,
        "calls_with_exactly_one_accept": per_call[1],
        "calls_with_zero": per_call[0],
        "calls_with_more": sum(n for k, n in per_call.items() if k > 1),
        "accepts_per_call": {str(k): n for k, n in sorted(per_call.items())},
        "accept_requests_not_200": dict(sorted(other_accepts.items())),
        "webhook_attempts": len(attempts),
        "answer_status_counts": dict(sorted(statuses.items())),
        "answer_kind_counts": dict(sorted(answers.items())),
        "answer_latency_ms": latency_ms(attempts),
        "answers_5xx": sum(1 for a in attempts if a.status is not None and a.status >= 500),
        "redeliveries": sum(1 for a in attempts if a.attempt > 1),
        "copies_unanswered": sum(args.copies - copies_answered(c) for c in calls),
        "every_copy_answered": all_answered,
        "calls_ended": sum(1 for c in calls if c.state is CallState.ENDED),
        "placing_s": round(placed_s, 2),
        "duration_s": round(duration_s, 2),
        "source": source_revision(),
        **run_facts(),
    }


def main() -> int:
    """Parse arguments, run, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls to place")
    parser.add_argument("--copies", type=int, default=5, help="concurrent copies per webhook")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--rate", type=float, default=50.0, help="calls placed per second")
    add_store_arguments(parser)
    parser.add_argument(
        "--deadline", type=float, default=120.0, help="seconds to wait, after placing, for answers"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: exactly_once-<db>.json")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the server's log here")
    args = parser.parse_args()
    out = args.out or Path(f"bench/results/exactly_once-{args.database}.json")
    results = run(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    ok = (
        results["calls_with_exactly_one_accept"] == results["calls"]
        and results["answers_5xx"] == 0
        and results["every_copy_answered"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
