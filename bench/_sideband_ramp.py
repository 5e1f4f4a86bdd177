"""The workload of ``bench/sideband.py``, shared by both systems under test.

One child process per system runs :func:`run_system`: it places calls in the emulator (a
separate process) through its control API, hands each to the system's :class:`Driver`
(which verifies the signed ``realtime.call.incoming`` webhook, accepts the call through the
REST endpoint and holds its sideband), ramps to each level of live calls, and reads this
process's RSS there. At the measuring level, a batch of short calls has the model call a
no-op tool; :class:`WireClock` times each one on the client's socket.

:class:`WireClock` is the only instrumentation, and it is the same for both systems: both
hold their sidebands on ``websockets`` asyncio connections (the openai SDK's
``realtime.connect`` and the Agents SDK's model alike), so the bench wraps
``Connection.recv`` and ``Connection.send`` of that library, in this process only, to note
when a frame carrying ``response.function_call_arguments.done`` is handed to the client and
when the client starts sending its ``function_call_output``. Production code is unchanged.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import resource
import secrets
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx
from websockets.asyncio.connection import Connection

from callcenter.emulator.webhooks import incoming_call_event, sip_headers, webhook_headers

FROM_NUMBER = "+14155550123"
TO_NUMBER = "+18005550100"
GREETING = "Hello, thanks for calling, how can I help?"
INSTRUCTIONS = "You are the benchmark's phone agent. Be brief."
TOOL_NAME = "noop"

# Every held call: the client greets the caller, then the caller stays on the line.
HOLD_SCRIPT: list[dict[str, Any]] = [{"type": "wait", "seconds": 3600}]
# A measured call: after the greeting the caller speaks, the model calls the no-op tool,
# the client answers it, the model replies, and the caller hangs up.
TOOL_SCRIPT: list[dict[str, Any]] = [
    {"type": "wait_for", "kind": "response.done", "timeout": 30},
    {"type": "say", "text": "Could you run the check, please?"},
    {"type": "model_call_tool", "name": TOOL_NAME, "arguments": {}},
    {"type": "wait_for", "kind": "function_call_output", "timeout": 30},
    {"type": "wait", "seconds": 0.3},
    {"type": "hang_up"},
]

_ARGUMENTS_DONE_TEXT = '"response.function_call_arguments.done"'
_ARGUMENTS_DONE_BYTES = _ARGUMENTS_DONE_TEXT.encode()
_SESSION_CREATED_TEXT = '"session.created"'
_SESSION_CREATED_BYTES = _SESSION_CREATED_TEXT.encode()
_OUTPUT_MARK = "function_call_output"


class WireClock:
    """Tool round trips and attaches seen on this process's ``websockets`` connections."""

    def __init__(self) -> None:
        self.round_trips: list[float] = []  # seconds, arguments done -> output sent
        self.attaches = 0  # session.created frames received
        self.closed = 0  # connections lost
        self.last_frame = time.monotonic()
        self._arrived: dict[int, float] = {}  # id(connection) -> arguments.done arrival

    def install(self) -> None:
        """Wrap ``recv``, ``send`` and ``connection_lost`` of ``Connection`` (this process only)."""
        recv, send, lost, clock = (
            Connection.recv,
            Connection.send,
            Connection.connection_lost,
            self,
        )

        async def timed_recv(self: Connection, decode: bool | None = None) -> Any:
            data = await recv(self, decode)
            clock.frame(id(self), data, time.perf_counter())
            return data

        async def timed_send(self: Connection, message: Any, text: bool | None = None) -> None:
            if isinstance(message, str | bytes):
                clock.sending(id(self), message, time.perf_counter())
            await send(self, message, text)

        def counted_lost(self: Connection, exc: Exception | None) -> None:
            clock.closed += 1
            lost(self, exc)

        Connection.recv = timed_recv  # type: ignore[method-assign]
        Connection.send = timed_send  # type: ignore[method-assign]
        Connection.connection_lost = counted_lost  # type: ignore[method-assign]

    def frame(self, connection: int, data: str | bytes, now: float) -> None:
        """A frame was handed to the client."""
        self.last_frame = time.monotonic()
        if isinstance(data, bytes):
            done, created = _ARGUMENTS_DONE_BYTES in data, _SESSION_CREATED_BYTES in data
        else:
            done, created = _ARGUMENTS_DONE_TEXT in data, _SESSION_CREATED_TEXT in data
        if done:
            self._arrived[connection] = now
        elif created:
            self.attaches += 1

    def sending(self, connection: int, message: str | bytes, now: float) -> None:
        """The client starts sending a frame."""
        text = message if isinstance(message, str) else message.decode(errors="replace")
        if _OUTPUT_MARK in text:
            arrived = self._arrived.pop(connection, None)
            if arrived is not None:
                self.round_trips.append(now - arrived)


class Driver(Protocol):
    """One system under test, holding calls in this process."""

    async def start_call(self, call_id: str, body: bytes, headers: dict[str, str]) -> None:
        """Take the signed webhook of a ringing call: verify, accept, hold its sideband."""
        ...

    async def close(self) -> None:
        """Release every call and stop."""
        ...


@dataclass(frozen=True)
class Workload:
    """How the ramp runs."""

    levels: tuple[int, ...] = (500, 1000, 2000)
    measure_at: int = 500
    batch: int = 200  # measured tool calls
    rate: float = 100.0  # held calls placed per second
    batch_rate: float = 20.0  # measured calls placed per second
    warmup: int = 10  # tool calls before the baseline (lazy imports, pools, caches)
    hold: float = 20.0  # seconds held at each level for CPU per call-minute (a ping interval)
    tracemalloc_top: int = 0  # >0: trace allocations, report the top sites of growth
    settle_timeout: float = 60.0


@dataclass
class Emulator:
    """The emulator process's control API, and what the bench needs to sign its webhooks."""

    url: str
    api_key: str
    webhook_secret: str
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30.0, limits=limits)

    async def place(
        self, call_id: str, script: list[dict[str, Any]]
    ) -> tuple[bytes, dict[str, str]]:
        """Ring a call (no webhook is delivered); return its signed webhook body and headers."""
        body = {"call_id": call_id, "from_number": FROM_NUMBER, "to_number": TO_NUMBER}
        answer = await self.http.post("/_emulator/calls", json={**body, "script": script})
        answer.raise_for_status()
        event = incoming_call_event(call_id, sip_headers(call_id, FROM_NUMBER, TO_NUMBER))
        raw = json.dumps(event).encode()
        webhook_id, timestamp = "wh_" + secrets.token_hex(12), int(time.time())
        return raw, webhook_headers(self.webhook_secret, webhook_id, timestamp, raw)


def memory_kib() -> dict[str, int]:
    """This process's resident set size and its parts (anonymous, file, shared), in KiB."""
    wanted = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}
    found: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            parts = line.split()
            if parts and parts[0] in wanted:
                found[wanted[parts[0]]] = int(parts[1])
    return found


def _sqlite_library() -> Any:
    """The SQLite library the ``sqlite3`` module uses, for ``sqlite3_memory_used``."""
    import _sqlite3

    library = ctypes.CDLL(_sqlite3.__file__)
    library.sqlite3_memory_used.restype = ctypes.c_int64
    return library


_SQLITE: Final = _sqlite_library()


def sqlite_memory_kib() -> int:
    """What SQLite itself holds in this process (prepared statements, page caches), in KiB."""
    return int(_SQLITE.sqlite3_memory_used()) // 1024


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def top_growth(base: tracemalloc.Snapshot, count: int) -> list[dict[str, Any]]:
    """The ``count`` source lines whose live allocations grew most since ``base``."""
    gc.collect()
    ignored = tracemalloc.Filter(False, tracemalloc.__file__)
    now = tracemalloc.take_snapshot().filter_traces([ignored])
    sites = []
    for stat in now.compare_to(base, "lineno")[:count]:
        frame = stat.traceback[0]
        sites.append(
            {
                "site": f"{_short(frame.filename)}:{frame.lineno}",
                "kib": round(stat.size_diff / 1024, 1),
                "blocks": stat.count_diff,
            }
        )
    return sites


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3."):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def open_fds() -> int:
    """File descriptors open in this process (sockets included)."""
    return len(os.listdir("/proc/self/fd"))


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one; return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of durations in seconds, as milliseconds."""
    if not seconds:
        return {}
    ms = [s * 1000 for s in seconds]
    return {
        "samples": len(ms),
        "p50": round(percentile(ms, 0.50), 3),
        "p90": round(percentile(ms, 0.90), 3),
        "p99": round(percentile(ms, 0.99), 3),
        "max": round(max(ms), 3),
        "mean": round(sum(ms) / len(ms), 3),
    }


async def wait_until(
    condition: Callable[[], bool], within: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; TimeoutError naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within}s")
        await asyncio.sleep(interval)


class Ramp:
    """Places calls for one driver and measures the process along the way."""

    def __init__(
        self, driver: Driver, emulator: Emulator, clock: WireClock, workload: Workload
    ) -> None:
        self.driver = driver
        self.emulator = emulator
        self.clock = clock
        self.workload = workload
        self.failures: list[str] = []
        self.started = 0  # calls the driver took
        self._count = 0

    async def start(self, script: list[dict[str, Any]]) -> None:
        """Place one call and hand it to the driver."""
        self._count += 1
        call_id = f"rtc_bench{self._count:05d}{secrets.token_hex(6)}"
        try:
            body, headers = await self.emulator.place(call_id, script)
            await self.driver.start_call(call_id, body, headers)
        except Exception as exc:  # counted and reported: one failed call must not stop the ramp
            self.failures.append(f"{call_id}: {type(exc).__name__}: {exc}")
        else:
            self.started += 1

    async def paced(self, count: int, rate: float, script: list[dict[str, Any]]) -> None:
        """Start ``count`` calls at ``rate`` per second."""
        began = time.monotonic()
        for index in range(count):
            delay = began + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.start(script)

    async def settle(self) -> None:
        """Wait for every call started to have attached, then for the traffic to stop."""
        timeout, started = self.workload.settle_timeout, self.started
        await wait_until(lambda: self.clock.attaches >= started, timeout, f"{started} attaches")
        await wait_until(lambda: time.monotonic() - self.clock.last_frame > 0.5, timeout, "quiet")

    async def tool_calls(self, count: int, rate: float) -> list[float]:
        """Run ``count`` measured tool calls; return their round trips in seconds."""
        before, started = len(self.clock.round_trips), self.started
        await self.paced(count, rate, TOOL_SCRIPT)
        expected = self.started - started
        await wait_until(
            lambda: len(self.clock.round_trips) - before >= expected,
            self.workload.settle_timeout,
            f"{expected} tool round trips",
        )
        await self.settle()
        return self.clock.round_trips[before:]

    async def hold(self, level: int) -> dict[str, float]:
        """Hold ``level`` calls for the workload's ``hold`` seconds: CPU per call-minute."""
        cpu, began = cpu_seconds(), time.monotonic()
        await asyncio.sleep(self.workload.hold)
        used, minutes = cpu_seconds() - cpu, level * (time.monotonic() - began) / 60
        return {
            "held_seconds": round(time.monotonic() - began, 1),
            "cpu_ms_per_call_minute": round(used * 1000 / minutes, 2),
        }

    async def run(self) -> dict[str, Any]:
        """Warm up, take the baseline, ramp through the levels; return the measurements."""
        workload = self.workload
        await self.tool_calls(workload.warmup, workload.batch_rate)
        gc.collect()
        base = memory_kib()
        baseline, sqlite_base = base["rss"], sqlite_memory_kib()
        traced = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
        levels: list[dict[str, Any]] = []
        held, round_trips = 0, None
        began = time.monotonic()
        for level in sorted(workload.levels):
            await self.paced(level - held, workload.rate, HOLD_SCRIPT)
            held = level
            await self.settle()
            cpu = await self.hold(level)
            gc.collect()
            memory = memory_kib()
            rss = memory["rss"]
            found = {
                "live_calls": level,
                "sidebands_open": self.clock.attaches - self.clock.closed,
                "fds_open": open_fds(),
                "rss_kib": rss,
                "rss_over_baseline_kib": rss - baseline,
                "kib_per_call": round((rss - baseline) / level, 1),
                "growth_kib": {k: v - base[k] for k, v in memory.items() if k != "rss"},
                "sqlite_growth_kib": sqlite_memory_kib() - sqlite_base,
                **cpu,
                "seconds_since_ramp_start": round(time.monotonic() - began, 1),
            }
            if traced is not None:
                found["top_growth"] = top_growth(traced, workload.tracemalloc_top)
            levels.append(found)
            if level == workload.measure_at:
                round_trips = await self.tool_calls(workload.batch, workload.batch_rate)
        return {
            "baseline_kib": base,
            "levels": levels,
            "tool_round_trip_ms": summary_ms(round_trips or []),
            "failures": len(self.failures),
            "first_failures": self.failures[:5],
        }


async def run_system(
    make_driver: Callable[[Emulator], Awaitable[Driver]],
    emulator: Emulator,
    workload: Workload,
) -> dict[str, Any]:
    """Measure one system in this process (see the module docstring)."""
    soft, hard = raise_fd_limit()
    if workload.tracemalloc_top:
        tracemalloc.start(1)
    clock = WireClock()
    clock.install()
    driver = await make_driver(emulator)
    ramp = Ramp(driver, emulator, clock, workload)
    try:
        results = await ramp.run()
    finally:
        await driver.close()
        await emulator.http.aclose()
    return {**results, "fd_limit": [soft, hard]}
