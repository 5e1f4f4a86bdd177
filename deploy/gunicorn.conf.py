"""gunicorn settings for callcenter in production: ``gunicorn --config gunicorn.conf.py``.

This file is what ``callcenter serve`` does, as a gunicorn config that a service manager can
run and an operator can read: gthread workers, each building its own app (and runtime
thread) after the fork; the master validates the config and migrates the database once
before any worker starts; a worker that exits releases its calls; logs are JSON lines.

gunicorn executes this file at start-up, so the environment is read here:

    CALLCENTER_BIND          host:port, or several separated by commas   (127.0.0.1:8080)
    CALLCENTER_WORKERS       worker processes          (usable CPUs, at least 2, at most 8)
    CALLCENTER_THREADS       request threads per worker                              (8)
    CALLCENTER_MAX_STREAMS   open SSE streams per worker, past it 503     (half the threads)
    CALLCENTER_LOG_LEVEL     debug | info | warning | error                       (info)

plus everything the app itself reads (OPENAI_API_KEY, OPENAI_WEBHOOK_SECRET,
CALLCENTER_CONFIG, CALLCENTER_DATABASE_URL, ...; see docs/deploy.md).
"""

from __future__ import annotations

import gc
import json
import os
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger

from callcenter.errors import CallcenterError
from callcenter.observability import metrics
from callcenter.observability.logs import JsonFormatter, configure_logging
from callcenter.settings import Settings
from callcenter.web.server import mark_worker_dead, prepare, release_worker, tune_worker


def _default_workers() -> int:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(2, min(usable or 1, 8))


# -- what runs, and where ---------------------------------------------------------------------
wsgi_app = "callcenter.web.app:create_app()"
bind = [part.strip() for part in os.environ.get("CALLCENTER_BIND", "127.0.0.1:8080").split(",")]
proc_name = "callcenter"
control_socket_disable = True  # gunicorn >= 25.1 would open a control socket under $HOME

# -- workers ----------------------------------------------------------------------------------
# gthread: a console stream (SSE) holds a thread, not a whole worker; each worker also runs
# the asyncio runtime thread that holds its calls' sideband connections.
worker_class = "gthread"
workers = int(os.environ.get("CALLCENTER_WORKERS") or _default_workers())
threads = int(os.environ.get("CALLCENTER_THREADS") or 8)
# SSE streams may hold half the threads (CALLCENTER_MAX_STREAMS); webhooks keep the rest.
_max_streams = os.environ.get("CALLCENTER_MAX_STREAMS") or str(max(1, threads // 2))
raw_env = [f"CALLCENTER_MAX_STREAMS={_max_streams}"]  # the workers' environment
preload_app = False  # each worker builds its own app after the fork, runtime thread included
max_requests = 0  # never recycle a worker: its live calls would have to move to another one
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # the heartbeat file on tmpfs, not on a slow or read-only disk

# -- timeouts ---------------------------------------------------------------------------------
timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 20  # on SIGTERM/SIGHUP: finish requests, release calls, exit within this
keepalive = 5  # seconds an idle connection from the proxy is kept open

# -- logging: JSON lines, requests on stdout, everything else on stderr ------------------------
loglevel = os.environ.get("CALLCENTER_LOG_LEVEL", "info").lower()
accesslog = "-"
errorlog = "-"


class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's logger writing JSON lines: one object per request on the access log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        status = str(resp.status).split(None, 1)[0]
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "logger": "gunicorn.access",
            "msg": f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} {status}",
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status) if status.isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "request_id": environ.get("HTTP_X_REQUEST_ID"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        line = json.dumps({key: value for key, value in entry.items() if value is not None})
        self.access_log.info(line)


logger_class = JsonLogger


# -- hooks ------------------------------------------------------------------------------------
_metrics_dir: metrics.MultiprocessDir | None = None


def on_starting(server: Any) -> None:
    """In the master, before any worker: JSON logs, a valid config, a migrated database,
    and the directory where every worker keeps its Prometheus metrics."""
    global _metrics_dir
    configure_logging(loglevel, json_lines=True)
    try:
        prepare(Settings.from_env())
    except CallcenterError as exc:
        raise RuntimeError(f"callcenter cannot start: {exc}") from exc
    _metrics_dir = metrics.prepare_multiprocess_dir()
    gc.freeze()  # as `callcenter serve` does: what the master built is never scanned again


def on_exit(server: Any) -> None:
    """In the master, at the very end: remove the metrics directory if it created one."""
    if _metrics_dir is not None:
        _metrics_dir.remove()


# A worker that exits (SIGTERM, SIGHUP, a crash it survives) releases its calls and its
# database connections, exactly as under `callcenter serve`.
worker_exit = release_worker
# Favour latency over throughput in workers, exactly as under `callcenter serve`.
post_worker_init = tune_worker
# An exited worker's live gauges (active calls) leave /metrics.
child_exit = mark_worker_dead
