"""Long-call benchmark: memory and CPU over one call of 200 turns with tools, vs the Agents SDK.

For each system, a fresh emulator process (with ``--server-timings none``: the turns follow
one another at once, memory is what is measured) and a fresh child process hold one call,
through the same drivers as ``bench/sideband.py`` (``_callcenter_sip.py``, ``_agents_sip.py``):
callcenter's real app (intake, runtime, sideband session, SQLite store), or the Agents SDK's
``RealtimeSession`` + ``OpenAIRealtimeSIPModel``. After the greeting the caller speaks
``--turns`` turns; in each the model calls the no-op tool, the system answers it, and the
model reads the answer back. The child samples its memory after every ``--every`` turns
(a tool output sent, counted on the client's socket as in ``bench/sideband.py``), after a
``gc.collect()``:

- ``rss_kib``: the process's RSS over its baseline (taken after a warm-up call of
  ``--warmup`` turns has ended, so lazy imports and pools are not counted);
- ``anon_kib``: the anonymous part of that growth (heap, not files or shared memory);
- ``sqlite_kib``: what SQLite's own allocator gained over the baseline (its page cache
  fills as the call's rows are written, up to ``cache_size`` per connection: bounded);
- ``heap_kib`` (``--trace`` runs): Python's live allocations since the long call began
  (``tracemalloc``), which RSS blurs with allocator slack; such a run also names the
  ``top_growth`` sites at the end;
- ``kib_per_turn``: the least-squares slope of each series over the samples from the first
  checkpoint on: what one more turn costs. Flat means ~0;
- ``cpu_ms_per_turn``: the child's CPU time (every thread) over the turns, divided by them.
  With no server pauses this is the work of a turn; CPU per call-minute is it times the
  turns of a minute (``cpu_ms_per_call_minute`` assumes ``--turns-per-minute``).

Each system runs twice: once plain (RSS and CPU), once with ``--trace`` (heap and sites;
tracing slows it). Results are written as JSON to ``--out``.

    python bench/conversation.py --out bench/results/conversation.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _machine import write_report
from sideband import API_KEY, HERE, SYSTEMS, EmulatorProcess

CHILD_TIMEOUT = 900.0


def conversation(turns: int, linger: float) -> list[dict[str, Any]]:
    """The caller's script: the greeting, ``turns`` turns each with a tool call, ``linger``
    seconds of quiet (the last sample is taken then), hang up."""
    from _sideband_ramp import TOOL_NAME

    steps: list[dict[str, Any]] = [{"type": "wait_for", "kind": "response.done", "timeout": 30}]
    for turn in range(1, turns + 1):
        steps += [
            {"type": "say", "text": f"Turn {turn}: could you check order {1000 + turn}, please?"},
            {"type": "model_call_tool", "name": TOOL_NAME, "arguments": {}},
            {"type": "wait_for", "kind": "function_call_output", "timeout": 30},
            {"type": "wait_for", "kind": "response.done", "timeout": 30},
        ]
    return [*steps, {"type": "wait", "seconds": linger}, {"type": "hang_up"}]


def slope(points: list[tuple[int, float]]) -> float | None:
    """The least-squares slope of ``points`` (x, y); None with fewer than two."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


async def play(request: dict[str, Any]) -> dict[str, Any]:
    """In the child: warm up, then one long call, sampled every ``every`` turns."""
    from _sideband_ramp import (
        Driver,
        Emulator,
        WireClock,
        cpu_seconds,
        memory_kib,
        raise_fd_limit,
        sqlite_memory_kib,
        top_growth,
        wait_until,
    )

    make_driver: Callable[[Emulator], Awaitable[Driver]]
    if request["system"] == "callcenter":
        from _callcenter_sip import make_driver
    else:
        from _agents_sip import make_driver
    raise_fd_limit()
    clock = WireClock()
    clock.install()
    emulator = Emulator(request["emulator"], API_KEY, request["secret"])
    driver = await make_driver(emulator)
    turns, every, timeout = request["turns"], request["every"], request["turn_timeout"]
    try:
        await call(emulator, driver, "rtc_warmup", conversation(request["warmup"], 0.0))
        await wait_until(lambda: clock.closed >= 1, timeout, "the warm-up call to end")
        gc.collect()
        base, sqlite_base = memory_kib(), sqlite_memory_kib()
        traced = None
        if request["trace"]:
            tracemalloc.start(1)
            traced = tracemalloc.take_snapshot()
        samples: list[dict[str, Any]] = []
        done_before = len(clock.round_trips)
        cpu, began = cpu_seconds(), time.monotonic()
        await call(emulator, driver, "rtc_long", conversation(turns, request["linger"]))
        for checkpoint in range(every, turns + 1, every):
            await wait_until(
                lambda c=checkpoint: len(clock.round_trips) - done_before >= c,
                timeout * every,
                f"turn {checkpoint}",
                interval=0.005,
            )
            gc.collect()
            memory = memory_kib()
            sample = {
                "turns": checkpoint,
                "rss_kib": memory["rss"] - base["rss"],
                "anon_kib": memory["anon"] - base["anon"],
                "sqlite_kib": sqlite_memory_kib() - sqlite_base,
            }
            if traced is not None:
                sample["heap_kib"] = round(tracemalloc.get_traced_memory()[0] / 1024, 1)
            samples.append(sample)
        used, seconds = cpu_seconds() - cpu, time.monotonic() - began
        sites = top_growth(traced, 10) if traced is not None else None
        await wait_until(lambda: clock.closed >= 2, timeout, "the long call to end")
    finally:
        await driver.close()
        await emulator.http.aclose()
    return summarise(request, samples, used, seconds, sites)


async def call(emulator: Any, driver: Any, name: str, script: list[dict[str, Any]]) -> None:
    """Place one call with ``script`` and hand its webhook to the driver."""
    call_id = f"{name}_{time.monotonic_ns():x}"
    body, headers = await emulator.place(call_id, script)
    await driver.start_call(call_id, body, headers)


def summarise(
    request: dict[str, Any],
    samples: list[dict[str, Any]],
    cpu: float,
    seconds: float,
    sites: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Slopes of the samples and CPU figures, as the results file carries them."""
    turns = request["turns"]
    found: dict[str, Any] = {
        "system": request["system"],
        "traced": request["trace"],
        "samples": samples,
        "rss_kib_per_turn": _rounded(slope([(s["turns"], s["rss_kib"]) for s in samples])),
        "sqlite_kib_per_turn": _rounded(slope([(s["turns"], s["sqlite_kib"]) for s in samples])),
        "seconds": round(seconds, 2),
        "cpu_ms_per_turn": round(cpu * 1000 / turns, 3),
        "cpu_ms_per_call_minute": round(cpu * 1000 / turns * request["turns_per_minute"], 1),
    }
    if request["trace"]:
        heap = [(s["turns"], s["heap_kib"]) for s in samples]
        found["heap_kib_per_turn"] = _rounded(slope(heap))
        found["top_growth"] = sites
    return found


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_child(system: str, trace: bool, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """One system, one pass, in a fresh child against a fresh emulator."""
    from callcenter.emulator.webhooks import new_webhook_secret

    secret = new_webhook_secret()
    log = scratch / f"emulator-{system}-{'traced' if trace else 'plain'}.log"
    emulator = EmulatorProcess(secret, log, server_timings="none")
    try:
        emulator.wait_ready()
        request = {"system": system, "emulator": emulator.url, "secret": secret, "trace": trace}
        request |= {k: v for k, v in vars(args).items() if k not in ("out", "child", "systems")}
        child = subprocess.run(
            [sys.executable, str(HERE / "conversation.py"), "--child", json.dumps(request)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        (scratch / f"child-{system}-{'traced' if trace else 'plain'}.log").write_text(child.stderr)
        if child.returncode != 0 or not child.stdout.strip():
            tail = "\n".join(child.stderr.splitlines()[-20:])
            raise RuntimeError(f"{system} child failed ({child.returncode}):\n{tail}")
        result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
        return result
    finally:
        emulator.stop()


def main() -> int:
    """Parse arguments, run each system plain and traced, print and write the results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="callcenter,agents")
    parser.add_argument("--turns", type=int, default=200, help="turns of the long call")
    parser.add_argument("--every", type=int, default=20, help="turns between memory samples")
    parser.add_argument("--warmup", type=int, default=5, help="turns of the warm-up call")
    parser.add_argument("--turn-timeout", type=float, default=30.0, help="seconds a turn may take")
    parser.add_argument("--linger", type=float, default=3.0, help="quiet seconds before hang-up")
    parser.add_argument(
        "--turns-per-minute", type=float, default=6.0, help="a real call's pace, for CPU/minute"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/conversation.json"))
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(HERE))
        request = json.loads(args.child)
        print(json.dumps(asyncio.run(play(request))), flush=True)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="callcenter-bench-conversation-"))
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for system in [s for s in args.systems.split(",") if s]:
        for trace in (False, True):
            key = f"{system}{'-traced' if trace else ''}"
            try:
                results[key] = run_child(system, trace, args, scratch)
            except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
                errors[key] = str(exc)
    report = {
        "benchmark": "conversation",
        "workload": {
            "turns": args.turns,
            "every": args.every,
            "warmup_turns": args.warmup,
            "linger_seconds": args.linger,
            "turns_per_minute": args.turns_per_minute,
            "server_timings": "none",
        },
        "systems": results,
        "errors": errors,
    }
    return write_report(report, args.out, scratch)


if __name__ == "__main__":
    sys.exit(main())
