"""callcenter against the docs' minimal sample: intake latency, saturation and start-up.

One emulator (the OpenAI stand-in) in this process; ``callcenter serve`` (defaults, SQLite)
and the docs' sample (``bench/_docs_sample.py`` under gunicorn gthread, same worker and
thread counts) as child processes. Three measurements, each written to ``--out``:

- ``compare``: calls placed at ``--rate`` calls/s in all, alternating call by call between
  the two (the order flipped every pair), ``--repeats`` rounds; per round and pooled, the
  emulator's webhook sent → accept answered (one clock at both ends) for each system.
- ``saturation``: for each system alone, the rate stepped up (``--steps``) for
  ``--step-seconds`` each until p99 passes 100 ms or calls go unanswered; the knee is the
  last rate whose p99 stays under 100 ms.
- ``startup``: process start → first answer (``/readyz`` 200 for callcenter; any HTTP answer
  for the sample, which has no readiness check), by worker count.

    python bench/intake_vs_sample.py --out bench/results/intake_vs_sample.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _machine import run_facts
from intake import API_KEY, FROM, SUPPORT, summary, webhook_to_accept_ms

from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, EmulatorThread, HangUp, RedeliveryPolicy
from callcenter.emulator.webhooks import new_webhook_secret
from callcenter.store import Store, default_sqlite_url
from callcenter.web.serve_process import ServeProcess, free_port

BENCH_DIR = Path(__file__).resolve().parent
KNEE_P99_MS = 100.0
CALLCENTER, SAMPLE = "callcenter", "docs_sample"


class SampleProcess:
    """The docs' sample under gunicorn gthread on loopback."""

    def __init__(self, env: dict[str, str], *, workers: int, threads: int = 8) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook_url = self.url + "/"
        command = [
            sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers),
            "--threads", str(threads), "--chdir", str(BENCH_DIR), "--log-level", "warning",
            "-b", f"127.0.0.1:{self.port}", "_docs_sample:app",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once the server answers HTTP at all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 405 on GET: it answers
            except (urllib.error.URLError, OSError):
                time.sleep(0.02)
        raise RuntimeError("the docs' sample did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def place(emulator: EmulatorThread, url: str) -> str:
    """Ring one call whose webhook goes to ``url``; its id."""
    host = emulator.emulator

    def ring() -> str:
        host.webhook_url = url
        return host.place_call(to_number=SUPPORT, script=[HangUp()], from_number=FROM).call_id

    call_id: str = emulator.call(ring)
    return call_id


def paced(count: int, rate: float, each: Callable[[int], None]) -> None:
    """Call ``each(index)`` ``count`` times at ``rate`` per second."""
    started = time.monotonic()
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        each(index)


def settle(emulator: EmulatorThread, call_ids: list[str], timeout: float = 30.0) -> None:
    """Wait until no call of ``call_ids`` is still ringing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        emulator.calls[c].state is CallState.RINGING for c in call_ids
    ):
        time.sleep(0.05)


def latencies(emulator: EmulatorThread, call_ids: list[str]) -> tuple[list[float], int]:
    """Webhook sent → accept answered (ms) of the accepted calls, and how many were not."""
    found = [ms for c in call_ids if (ms := webhook_to_accept_ms(emulator, c)) is not None]
    return found, len(call_ids) - len(found)


def compare(
    emulator: EmulatorThread, urls: dict[str, str], rate: float, calls: int, repeats: int
) -> dict[str, Any]:
    """Interleaved rounds; per-round and pooled summaries for each system."""
    names = list(urls)
    rounds: list[dict[str, Any]] = []
    pooled: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        ids: dict[str, list[str]] = {name: [] for name in names}

        def each(index: int, ids: dict[str, list[str]] = ids) -> None:
            pair, second = divmod(index, 2)
            name = names[(pair + second) % 2]  # ABBA...: neither always goes first
            ids[name].append(place(emulator, urls[name]))

        paced(calls * len(names), rate, each)
        settle(emulator, [c for group in ids.values() for c in group])
        entry: dict[str, Any] = {}
        for name in names:
            found, missing = latencies(emulator, ids[name])
            pooled[name] += found
            entry[name] = {**summary(found), "not_accepted": missing}
        rounds.append(entry)
    result: dict[str, Any] = {
        "rounds": rounds,
        "pooled": {n: summary(v) for n, v in pooled.items()},
    }
    ours, theirs = result["pooled"][CALLCENTER], result["pooled"][SAMPLE]
    result["ratio"] = {q: round(ours[q] / theirs[q], 2) for q in ("p50", "p90", "p99")}
    return result


def saturation(
    emulator: EmulatorThread, url: str, steps: list[float], seconds: float
) -> dict[str, Any]:
    """p50/p99 at each step of rate until p99 passes the knee threshold."""
    points: list[dict[str, Any]] = []
    for rate in steps:
        ids: list[str] = []
        started = time.monotonic()
        paced(int(rate * seconds), rate, lambda _i, ids=ids: ids.append(place(emulator, url)))
        offered = len(ids) / max(1e-9, time.monotonic() - started)
        settle(emulator, ids)
        found, missing = latencies(emulator, ids)
        points.append(
            {"rate": rate, "achieved_rate": round(offered, 1), **summary(found),
             "not_accepted": missing}
        )  # fmt: skip
        if missing or not found or summary(found)["p99"] > KNEE_P99_MS:
            break
        time.sleep(1)  # let the calls of this step end before the next
    under = [
        p["rate"] for p in points if not p["not_accepted"] and p.get("p99", 1e9) <= KNEE_P99_MS
    ]
    return {"points": points, "knee_rate": max(under) if under else None}


def startup(env: dict[str, str], workers_list: list[int], repeats: int) -> dict[str, Any]:
    """Seconds from process start to first answer, by system and worker count."""
    out: dict[str, Any] = {CALLCENTER: {}, SAMPLE: {}}
    for workers in workers_list:
        for name in (CALLCENTER, SAMPLE):
            times = []
            for _ in range(repeats):
                started = time.monotonic()
                server = start(name, env, workers)
                server.wait_ready()
                times.append(round(time.monotonic() - started, 3))
                server.stop()
            out[name][str(workers)] = {"min": min(times), "max": max(times), "runs": times}
    return out


def start(name: str, env: dict[str, str], workers: int) -> ServeProcess | SampleProcess:
    """Start one system's server (not yet ready)."""
    if name == SAMPLE:
        return SampleProcess(env, workers=workers)
    return ServeProcess(env, example_config_path(), workers=workers, log_file=Path(os.devnull))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three measurements and return their results."""
    secret = new_webhook_secret()
    results: dict[str, Any] = {"benchmark": "intake_vs_sample", "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="callcenter-bench-") as scratch:
        database_url = default_sqlite_url(Path(scratch))
        with Store.open(database_url) as store:
            store.migrate()
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
        ours = start(CALLCENTER, env, args.workers)
        theirs = start(SAMPLE, env, args.workers)
        try:
            ours.wait_ready()
            theirs.wait_ready()
            urls = {CALLCENTER: ours.webhook_url, SAMPLE: theirs.webhook_url}
            compare(emulator, urls, rate=20, calls=20, repeats=1)  # warm up both
            time.sleep(1)
            results["compare"] = {
                "rate_per_s": args.rate,
                "calls_per_system_per_round": args.calls,
                **compare(emulator, urls, args.rate, args.calls, args.repeats),
            }
            time.sleep(1)
            results["saturation"] = {
                name: saturation(emulator, url, args.steps, args.step_seconds)
                for name, url in urls.items()
            }
        finally:
            ours.stop()
            theirs.stop()
        results["startup_s"] = startup(env, args.startup_workers, args.startup_repeats)
        emulator.stop()
    results["knee_p99_ms"] = KNEE_P99_MS
    results.update(run_facts())
    return results


def main() -> int:
    """Parse arguments, run, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, steps and repeats")
    parser.add_argument("--rate", type=float, default=100.0, help="calls/s, both systems in all")
    parser.add_argument("--calls", type=int, default=200, help="calls per system per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step-seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/intake_vs_sample.json"))
    args = parser.parse_args()
    args.steps = [50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0, 650.0, 800.0]
    args.startup_workers, args.startup_repeats = [1, 2, 4], 3
    if args.quick:
        args.calls, args.repeats, args.step_seconds = 100, 1, 2.0
        args.steps = [50.0, 100.0, 200.0, 400.0, 800.0]
        args.startup_workers, args.startup_repeats = [2], 1
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
