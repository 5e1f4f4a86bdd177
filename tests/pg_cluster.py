"""A private PostgreSQL cluster for the tests that stop the database (never the shared one).

The cluster lives in its own directory under /tmp, listens on a free loopback port, and runs
as the ``postgres`` user when the tests run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import sqlalchemy as sa

from callcenter.store import Store

BIN: Final = Path("/usr/lib/postgresql/15/bin")
USER: Final = "postgres"


def missing() -> str | None:
    """Why a private cluster cannot run here, or None if it can."""
    if not (BIN / "initdb").exists() or not (BIN / "pg_ctl").exists():
        return f"no initdb/pg_ctl in {BIN} (install postgresql-15 to run the outage tests)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as another user"
    return None


class PrivateCluster:
    """``initdb`` in a temporary directory; :meth:`start` and :meth:`stop` at will."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="callcenter-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, USER, USER)
        self._run(BIN / "initdb", "-D", self.data, "-U", USER, "--auth=trust", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.dir / "server.log"
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut) and wait until it is down."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        """Whether the server is up."""
        status = self._run(BIN / "pg_ctl", "-D", self.data, "status", check=False)
        return status.returncode == 0

    def new_database(self) -> str:
        """The URL of a fresh, migrated database on this cluster (started if it is down)."""
        if not self.running():
            self.start()
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = self.url.rsplit("/", 1)[0] + f"/{name}"
        with Store.open(url) as store:
            store.migrate()
        return url

    def destroy(self) -> None:
        """Stop the server if it runs, and delete the cluster."""
        if self.running():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, *command: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(part) for part in command]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", USER, "--", *argv]
        return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60)


def module_cluster() -> Iterator[PrivateCluster]:
    """The body of a module-scoped fixture: a started private cluster, destroyed after."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    private = PrivateCluster()
    private.start()
    yield private
    private.destroy()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
