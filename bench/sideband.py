"""Sideband benchmark: memory per live call and tool round trip, callcenter vs the Agents SDK.

For each system, a fresh emulator of OpenAI's side runs in its own process (its CPU and
memory are not counted) and the system runs in a fresh child process that holds every
call, as one worker would. The child places calls through the emulator's control API and
hands each call's signed ``realtime.call.incoming`` webhook to the system, which verifies
it, accepts the call through the REST endpoint and holds its sideband WebSocket:
callcenter's real app (intake, runtime loop thread, sideband executor, session, SQLite
store), or the Agents SDK's ``RealtimeSession`` + ``OpenAIRealtimeSIPModel`` per call as in
its ``twilio_sip`` example (see ``_callcenter_sip.py`` and ``_agents_sip.py``). Each held
call is greeted, then its caller stays on the line. The child ramps to 500, 1,000 and
2,000 live calls (``--rate`` calls per second) and reports, at each level:

- ``kib_per_call``: (RSS of the child - its baseline RSS) / live calls, after a
  ``gc.collect()``. The baseline is taken after ``--warmup`` tool calls (lazy imports,
  thread pools, caches), so fixed costs are not counted per call. RSS covers the whole
  process, every thread included (for callcenter: intake, runtime loop, store writer, tool
  pool); ``growth_kib`` splits the growth into anonymous / file / shared pages,
  ``sqlite_growth_kib`` is what SQLite's own allocator gained (``sqlite3_memory_used``:
  prepared statements and page caches, which ``tracemalloc`` cannot see), and
  ``sidebands_open`` / ``fds_open`` show the calls are really held;
- ``cpu_ms_per_call_minute``: the child's CPU time (every thread) over ``--hold`` seconds
  at the level, divided by the call-minutes held meanwhile (live calls x minutes);
- ``top_growth`` (with ``--tracemalloc N``): the N source lines whose Python allocations
  grew most since the baseline. Tracing slows the child and inflates its RSS: read the
  sites, not the KiB per call, of such a run;
- ``tool_round_trip_ms`` at 500 live calls: ``--batch`` short calls placed at
  ``--batch-rate`` per second on top of the 500 held ones (greeting, the caller speaks, the
  model calls a no-op sync tool, the client answers, the caller hangs up). A round trip runs
  from the moment the client's ``websockets`` connection hands it the frame of
  ``response.function_call_arguments.done`` to the moment the client starts sending the
  ``conversation.item.create`` of the ``function_call_output``: client side only, no
  loopback transit. Both systems are timed by the same wrapper of ``websockets``
  ``Connection.recv`` / ``send`` in the child; no production code is changed;
- ``memory_ratio_agents_over_callcenter``: the Agents SDK's KiB per call / callcenter's.

Targets: callcenter <= 100 KiB per call, tool round trip p50 <= 1 ms and p99 <= 5 ms, and
>= 3x less memory per call than the Agents SDK. Results are written as JSON to ``--out``.

    python bench/sideband.py --out bench/results/sideband.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _machine import write_report

HERE = Path(__file__).resolve().parent
SYSTEMS = ("callcenter", "agents")
API_KEY = "sk-bench-emulator"
CHILD_TIMEOUT = 600.0


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class EmulatorProcess:
    """``python -m callcenter emulator`` in its own process, open-files limit raised."""

    def __init__(self, secret: str, log: Path, *, server_timings: str = "realistic") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("w")
        command = [
            sys.executable, "-m", "callcenter", "--log-level", "WARNING", "emulator",
            "--port", str(self.port), "--api-key", API_KEY, "--webhook-secret", secret,
            "--server-timings", server_timings,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_raise_fd_limit
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once the emulator answers its control API."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self._process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise TimeoutError("the emulator did not start")

    def rss_kib(self) -> int:
        """The emulator's RSS (reported, not counted)."""
        status = Path(f"/proc/{self._process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


def run_child(system: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Measure ``system`` in a fresh child process against a fresh emulator process."""
    from callcenter.emulator.webhooks import new_webhook_secret

    secret = new_webhook_secret()
    emulator = EmulatorProcess(secret, scratch / f"emulator-{system}.log")
    try:
        emulator.wait_ready()
        request = {"system": system, "emulator": emulator.url, "secret": secret, **vars(args)}
        request["out"] = str(request["out"])
        began = time.monotonic()
        child = subprocess.run(
            [sys.executable, str(HERE / "sideband.py"), "--child", json.dumps(request)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        (scratch / f"child-{system}.log").write_text(child.stderr)
        if child.returncode != 0 or not child.stdout.strip():
            tail = "\n".join(child.stderr.splitlines()[-20:])
            raise RuntimeError(f"{system} child failed ({child.returncode}):\n{tail}")
        result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
        result["wall_seconds"] = round(time.monotonic() - began, 1)
        result["emulator_rss_kib_at_end"] = emulator.rss_kib()
        return result
    finally:
        emulator.stop()


def child_main(request: dict[str, Any]) -> None:
    """In the child: run one system and print its results as one JSON line."""
    sys.path.insert(0, str(HERE))
    from _sideband_ramp import Driver, Emulator, Workload, run_system

    make_driver: Callable[[Emulator], Awaitable[Driver]]
    if request["system"] == "callcenter":
        from _callcenter_sip import make_driver
    else:
        from _agents_sip import make_driver
    workload = Workload(
        levels=tuple(request["levels"]),
        measure_at=request["measure_at"],
        batch=request["batch"],
        rate=request["rate"],
        batch_rate=request["batch_rate"],
        warmup=request["warmup"],
        hold=request["hold"],
        tracemalloc_top=request["tracemalloc"],
    )
    emulator = Emulator(request["emulator"], API_KEY, request["secret"])
    results = asyncio.run(run_system(make_driver, emulator, workload))
    print(json.dumps({"system": request["system"], **results}), flush=True)


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Agents SDK's memory per call over callcenter's, at each level both reached."""
    if set(results) != set(SYSTEMS):
        return {}
    ours = {x["live_calls"]: x["kib_per_call"] for x in results["callcenter"]["levels"]}
    theirs = {x["live_calls"]: x["kib_per_call"] for x in results["agents"]["levels"]}
    return {
        str(level): round(theirs[level] / ours[level], 2)
        for level in sorted(set(ours) & set(theirs))
        if ours[level] > 0
    }


def targets(results: dict[str, dict[str, Any]], ratio: dict[str, Any]) -> dict[str, Any]:
    """Each target and whether callcenter met it."""
    found = results.get("callcenter")
    if not found:
        return {}
    worst = max(x["kib_per_call"] for x in found["levels"])
    trip = found["tool_round_trip_ms"]
    return {
        "kib_per_call_max_100": {"measured": worst, "met": worst <= 100},
        "tool_p50_ms_max_1": {"measured": trip.get("p50"), "met": trip.get("p50", 1e9) <= 1},
        "tool_p99_ms_max_5": {"measured": trip.get("p99"), "met": trip.get("p99", 1e9) <= 5},
        "memory_ratio_min_3": {
            "measured": min(ratio.values()) if ratio else None,
            "met": bool(ratio) and min(ratio.values()) >= 3,
        },
    }


def main() -> int:
    """Parse arguments, run each system, print and write the results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="callcenter,agents")
    parser.add_argument("--levels", default="500,1000,2000", help="live calls to measure at")
    parser.add_argument("--measure-at", type=int, default=500, help="level of the tool batch")
    parser.add_argument("--batch", type=int, default=200, help="measured tool calls")
    parser.add_argument("--rate", type=float, default=100.0, help="held calls placed per second")
    parser.add_argument("--batch-rate", type=float, default=20.0, help="tool calls per second")
    parser.add_argument("--warmup", type=int, default=10, help="tool calls before the baseline")
    parser.add_argument(
        "--hold", type=float, default=20.0, help="seconds held at each level (a ping interval)"
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="N",
        help="trace allocations and report the N sites that grew most (slower, more memory)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/sideband.json"))
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return 0
    args.levels = [int(x) for x in args.levels.split(",")]
    systems = [s for s in args.systems.split(",") if s]
    scratch = Path(tempfile.mkdtemp(prefix="callcenter-bench-sideband-"))
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for system in systems:
        try:
            results[system] = run_child(system, args, scratch)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
            errors[system] = str(exc)
    ratio = compare(results)
    report = {
        "benchmark": "sideband",
        "workload": {
            "levels": args.levels,
            "measure_at": args.measure_at,
            "batch": args.batch,
            "rate_per_s": args.rate,
            "batch_rate_per_s": args.batch_rate,
            "warmup_calls": args.warmup,
            "hold_seconds": args.hold,
            "tracemalloc_top": args.tracemalloc,
        },
        "systems": results,
        "memory_ratio_agents_over_callcenter": ratio,
        "targets": targets(results, ratio),
        "errors": errors,
    }
    return write_report(report, args.out, scratch)


if __name__ == "__main__":
    sys.exit(main())
