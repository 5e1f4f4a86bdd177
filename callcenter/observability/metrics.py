"""Prometheus metrics of the controller, correct under several gunicorn workers.

The rest of the code records with one-line calls (``metrics.webhook_handled(...)``) and never
touches prometheus objects. :func:`install` (called by ``create_app``) decides how this
process keeps its numbers:

- with ``PROMETHEUS_MULTIPROC_DIR`` set (``callcenter serve`` sets it in the gunicorn master,
  see :func:`prepare_multiprocess_dir`), in prometheus_client's multiprocess mode: each
  worker writes its values to files there and ``/metrics``, whichever worker answers it,
  merges every worker's files; the master marks dead workers with :func:`worker_gone`;
- otherwise (one process, as in the tests' in-process controller), in a plain registry.

Latencies are in seconds, with buckets from 1 ms, since most of what is measured here takes
milliseconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from callcenter.call.vocabulary import CallOutcome

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. Webhook handling and control calls take milliseconds; a retried call, seconds.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Tools call the company's systems: tens of milliseconds to their timeout.
TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The caller's wait for the voice: a few hundred milliseconds when all is well, seconds when not.
WAIT_BUCKETS = (
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip

VERIFICATION_FAILURES = ("unsigned", "malformed", "bad_timestamp", "stale", "forged")
DELIVERY_RESULTS = ("handled", "duplicate", "ignored", "invalid", "store_unavailable")
STORE_WRITE_PROBLEMS = ("retried", "spilled", "dropped")
# What one notification attempt came to; the receiver is named by its config key (notify[0]).
NOTIFICATION_DELIVERED = "delivered"
NOTIFICATION_RETRY = "retry"  # not taken; tried again later
NOTIFICATION_GIVEN_UP = "given_up"  # a 410, or past the retry horizon
NOTIFICATION_DROPPED = "dropped"  # never sent: its receiver or call is gone
UNCONFIGURED_RECEIVER = "unconfigured"  # a row for a URL no [[notify]] table names
NO_ROUTE = "none"


class _Instruments:
    """The metric objects of one process."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.calls = Counter(
            "callcenter_calls",
            "Calls by route and final outcome (see CallOutcome: rejected, completed, ...).",
            ["route", "outcome"],
            registry=registry,
        )
        self.active_calls = Gauge(
            "callcenter_active_calls",
            "Calls whose sideband this node holds now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.webhook_seconds = Histogram(
            "callcenter_webhook_duration_seconds",
            "Time to handle one webhook delivery, from receipt to answer.",
            ["event_type", "result"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.webhook_deliveries = Counter(
            "callcenter_webhook_deliveries",
            "Webhook deliveries by result (handled, duplicate, ignored, invalid, "
            "store_unavailable).",
            ["result"],
            registry=registry,
        )
        self.verification_failures = Counter(
            "callcenter_webhook_verification_failures",
            "Webhook deliveries refused by signature checks, by reason.",
            ["reason"],
            registry=registry,
        )
        self.control_seconds = Histogram(
            "callcenter_control_duration_seconds",
            "One request to the calls API (accept, reject, refer, hangup), by verb and HTTP "
            "status, or 'error' / 'timeout' without an answer.",
            ["verb", "status"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.sideband_reattaches = Counter(
            "callcenter_sideband_reattaches",
            "Sideband WebSocket reattaches to a live call after the connection dropped.",
            registry=registry,
        )
        self.tool_seconds = Histogram(
            "callcenter_tool_duration_seconds",
            "One function tool run, by tool and result.",
            ["tool", "result"],
            registry=registry,
            buckets=TOOL_BUCKETS,
        )
        self.greeting_seconds = Histogram(
            "callcenter_greeting_seconds",
            "The caller's wait for the greeting: the accept sent to its audio starting.",
            ["route"],
            registry=registry,
            buckets=WAIT_BUCKETS,
        )
        self.turn_seconds = Histogram(
            "callcenter_turn_seconds",
            "The caller's wait in a turn: they stopped speaking to the reply's audio starting "
            "(tool time included).",
            ["route"],
            registry=registry,
            buckets=WAIT_BUCKETS,
        )
        self.escalations = Counter(
            "callcenter_escalations",
            "Calls handed to a human, by trigger.",
            ["trigger"],
            registry=registry,
        )
        self.transfer_attempts = Counter(
            "callcenter_transfer_attempts",
            "REFERs to one target, by how they ended: transferred (the call left us), refused "
            "(the REFER failed), unanswered (still with us after the target's answer_timeout).",
            ["result"],
            registry=registry,
        )
        self.store_writes = Counter(
            "callcenter_store_write_problems",
            "Trouble with the store writes of live calls: a failed try, retried; a write put "
            "in the spill file (a long outage); a write dropped (refused for good).",
            ["result"],
            registry=registry,
        )
        self.notification_attempts = Counter(
            "callcenter_notification_attempts",
            "Notification attempts by receiver (its [[notify]] key) and result: delivered, "
            "retry (tried again later), given_up (410 or past the horizon), dropped (never sent).",
            ["receiver", "result"],
            registry=registry,
        )
        self.notification_seconds = Histogram(
            "callcenter_notification_duration_seconds",
            "One POST to a notification receiver, answer read, by receiver.",
            ["receiver"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        # Known label values start at 0, so that rate() sees their first increase.
        for reason in VERIFICATION_FAILURES:
            self.verification_failures.labels(reason)
        for result in DELIVERY_RESULTS:
            self.webhook_deliveries.labels(result)
        for result in STORE_WRITE_PROBLEMS:
            self.store_writes.labels(result)


@dataclass(frozen=True)
class _Installed:
    instruments: _Instruments
    registry: CollectorRegistry | None  # None: multiprocess mode
    directory: Path | None  # the multiprocess directory


_lock = threading.Lock()
_installed: _Installed | None = None


def install() -> None:
    """Set up this process's metrics; called at app creation.

    Multiprocess mode if ``PROMETHEUS_MULTIPROC_DIR`` is set now, a plain registry otherwise.
    Later calls keep the metrics already set up (the numbers belong to the process), unless
    the mode changed.
    """
    global _installed
    directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
    wanted = Path(directory) if directory else None
    with _lock:
        if _installed is None or _installed.directory != wanted:
            _installed = _build(wanted)


def exposition() -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics``: every worker's numbers, merged."""
    found = _current()
    if found.directory is not None:
        registry = CollectorRegistry()
        registry.register(_WorkerFiles(found.directory))
        return generate_latest(registry), CONTENT_TYPE_LATEST
    assert found.registry is not None
    return generate_latest(found.registry), CONTENT_TYPE_LATEST


class _WorkerFiles(Collector):
    """Every worker's metric files, merged, leaving out the empty ones.

    prometheus_client creates a worker's file and sizes it a moment later. A scrape in that
    moment fails on the empty file with ``struct.error``, and after a worker killed in it
    (its file then stays empty for good) every scrape does (prometheus/client_python#1199).
    An empty file holds no samples yet, so leaving it out loses nothing.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> Iterable[Metric]:
        files = [str(path) for path in self._directory.glob("*.db") if _has_samples(path)]
        merged: Iterable[Metric] = multiprocess.MultiProcessCollector.merge(files)  # type: ignore[no-untyped-call]
        return merged


def _has_samples(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:  # a dead worker's live gauges, dropped since the listing
        return False


# -- recording ---------------------------------------------------------------------------------


def call_outcome(route: str | None, outcome: CallOutcome) -> None:
    """A call reached its final outcome (one of ``CallOutcome``, once it is ``final``)."""
    _current().instruments.calls.labels(route or NO_ROUTE, outcome).inc()


def call_started() -> None:
    """This worker started holding a call."""
    _current().instruments.active_calls.inc()


def call_ended() -> None:
    """This worker stopped holding a call."""
    _current().instruments.active_calls.dec()


def webhook_handled(event_type: str, result: str, seconds: float) -> None:
    """One webhook delivery was answered, with ``result`` (one of ``DELIVERY_RESULTS``)."""
    instruments = _current().instruments
    instruments.webhook_seconds.labels(event_type, result).observe(seconds)
    instruments.webhook_deliveries.labels(result).inc()


def webhook_unverified(reason: str) -> None:
    """A delivery failed signature checks (``reason``: one of ``VERIFICATION_FAILURES``)."""
    _current().instruments.verification_failures.labels(reason).inc()


def control_call(verb: str, status: str, seconds: float) -> None:
    """One calls-API request ended: ``status`` is the HTTP status, or error / timeout."""
    _current().instruments.control_seconds.labels(verb, status).observe(seconds)


def sideband_reattach() -> None:
    """A live call's sideband is being reattached after a drop."""
    _current().instruments.sideband_reattaches.inc()


def tool_ran(tool: str, result: str, seconds: float) -> None:
    """A function tool finished with ``result`` (ok, error, timeout...)."""
    _current().instruments.tool_seconds.labels(tool, result).observe(seconds)


def caller_waited(route: str | None, kind: str, seconds: float) -> None:
    """The caller heard the voice after ``seconds``: ``kind`` is greeting or turn."""
    instruments = _current().instruments
    histogram = instruments.greeting_seconds if kind == "greeting" else instruments.turn_seconds
    histogram.labels(route or NO_ROUTE).observe(seconds)


def escalation(trigger: str) -> None:
    """A call was handed to a human because of ``trigger``."""
    _current().instruments.escalations.labels(trigger).inc()


def transfer_attempt(result: str) -> None:
    """A REFER to one target ended with ``result`` (transferred, refused, unanswered)."""
    _current().instruments.transfer_attempts.labels(result).inc()


def store_write_problem(result: str, count: int = 1) -> None:
    """``count`` store writes were retried, spilled or dropped (``STORE_WRITE_PROBLEMS``)."""
    _current().instruments.store_writes.labels(result).inc(count)


def notification_attempt(receiver: str, result: str, seconds: float | None = None) -> None:
    """One notification attempt to ``receiver`` came to ``result``; ``seconds``: its POST."""
    instruments = _current().instruments
    instruments.notification_attempts.labels(receiver, result).inc()
    if seconds is not None:
        instruments.notification_seconds.labels(receiver).observe(seconds)


# -- the gunicorn master -----------------------------------------------------------------------


@dataclass(frozen=True)
class MultiprocessDir:
    """Where the workers write their metric files; ``private``: made by us, removed by us."""

    path: Path
    private: bool
    owner_pid: int = field(default_factory=os.getpid)

    def remove(self) -> None:
        """Delete the directory if it is ours, and stop pointing the environment at it.

        Only in the process that prepared it: a gunicorn worker leaves through the master's
        stack (``sys.exit`` in the forked child), and must not take the directory with it.
        """
        if not self.private or os.getpid() != self.owner_pid:
            return
        if os.environ.get(MULTIPROC_DIR_VARIABLE) == str(self.path):
            del os.environ[MULTIPROC_DIR_VARIABLE]
        shutil.rmtree(self.path, ignore_errors=True)


def prepare_multiprocess_dir(environ: MutableMapping[str, str] | None = None) -> MultiprocessDir:
    """In the gunicorn master, before forking: the directory for the workers' metric files.

    Honours ``PROMETHEUS_MULTIPROC_DIR`` if the operator set it (created if missing; metric
    files of an earlier run are deleted, or their counts would be added to this run's);
    otherwise creates a fresh private directory and sets the variable, so that the workers
    inherit it.
    """
    env = os.environ if environ is None else environ
    given = env.get(MULTIPROC_DIR_VARIABLE)
    if given:
        path = Path(given)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return MultiprocessDir(path, private=False)
    path = Path(tempfile.mkdtemp(prefix="callcenter-metrics-"))
    env[MULTIPROC_DIR_VARIABLE] = str(path)
    return MultiprocessDir(path, private=True)


def worker_gone(pid: int) -> None:
    """In the gunicorn master, after worker ``pid`` exited: drop its live gauges."""
    directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if directory:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


# -- internals ---------------------------------------------------------------------------------


def _current() -> _Installed:
    """The installed metrics (installed now if no app did it yet)."""
    if _installed is None:
        install()
    assert _installed is not None
    return _installed


def _build(directory: Path | None) -> _Installed:
    if directory is None:
        registry = CollectorRegistry()
        return _Installed(_Instruments(registry), registry, None)
    # prometheus_client picks its value class when first imported; the gunicorn master may
    # have imported it before the variable was set, so pick again now, in the worker.
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return _Installed(_Instruments(None), None, directory)
