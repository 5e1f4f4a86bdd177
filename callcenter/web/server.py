"""``callcenter serve``: the controller under gunicorn (gthread workers).

The master validates the config, migrates the store and prepares the directory of the
workers' Prometheus metric files once, before forking; each worker then builds its own app
(and so its own runtime loop thread) after the fork.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from callcenter.config.loader import Config, load_config, resolve_notify_secrets
from callcenter.observability import metrics
from callcenter.settings import Settings
from callcenter.store import Store
from callcenter.web.app import EXTENSION, Services, create_app

logger = logging.getLogger(__name__)


class ControllerApplication(BaseApplication):  # type: ignore[misc]
    """A gunicorn application that builds the Flask app in each worker."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self._settings)


def gunicorn_options(
    bind: str, workers: int, threads: int, log_level: str, access_log: bool
) -> dict[str, Any]:
    """The gunicorn settings callcenter runs with."""
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "preload_app": False,  # each worker builds its own app, runtime thread included
        "loglevel": log_level.lower(),
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "post_worker_init": tune_worker,
        "worker_exit": release_worker,
        "child_exit": mark_worker_dead,
        "proc_name": "callcenter",
        "control_socket_disable": True,  # gunicorn's control socket lives under $HOME
    }


def serve(
    settings: Settings,
    *,
    bind: str,
    workers: int,
    threads: int = 8,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Validate, migrate, then run gunicorn until it is stopped."""
    config = prepare(settings)
    if settings.max_streams is None:  # streams may hold half the threads; webhooks keep the rest
        settings = replace(settings, max_streams=max(1, threads // 2))
    metrics_dir = metrics.prepare_multiprocess_dir()
    logger.info(
        "serving",
        extra={
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "max_streams": settings.max_streams,
            "metrics_dir": str(metrics_dir.path),
            "config": config.summary(),
        },
    )
    application = ControllerApplication(
        settings, gunicorn_options(bind, workers, threads, log_level, access_log)
    )
    gc.freeze()  # what the master built lives until it exits: no collection scans it again
    try:
        application.run()
    finally:
        metrics_dir.remove()


# How often a thread holding the GIL is asked to let another run (Python's default: 5 ms).
# A webhook thread that waits behind a busy sideband thread would wait that long each time.
GIL_SWITCH_INTERVAL = 0.0005


def prepare(settings: Settings) -> Config:
    """What the master does once before forking: validate the config, migrate the store."""
    config = resolve_notify_secrets(load_config(settings.config_path), os.environ)
    with Store.open(settings.database_url) as store:
        store.migrate()
    return config


def tune_worker(worker: Any) -> None:
    """gunicorn ``post_worker_init`` hook: favour latency; drain at once on SIGTERM.

    Freezing the objects that exist once the app is built keeps every later collection
    (the last one at exit included, which otherwise took a second and more) off them.

    gunicorn's own SIGTERM handler stops the worker taking connections and lets the
    requests in flight finish; ours also starts the drain at that moment, beside them:
    /readyz answers 503 and every held call is handed over, so no call waits for the
    slowest request (a console stream) to end.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    gc.freeze()  # the app and its imports live as long as the worker: never scan them again
    found = _services(worker)
    if found is None:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        threading.Thread(target=found.drain, name="callcenter-drain", daemon=True).start()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def release_worker(server: Any, worker: Any) -> None:
    """gunicorn ``worker_exit`` hook: hand this worker's calls over, close its connections."""
    found = _services(worker)
    if found is not None:
        found.close()


def _services(worker: Any) -> Services | None:
    app = getattr(worker, "wsgi", None)
    found = app.extensions.get(EXTENSION) if isinstance(app, Flask) else None
    return found if isinstance(found, Services) else None


def mark_worker_dead(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook, in the master: the exited worker's live gauges go."""
    metrics.worker_gone(worker.pid)
