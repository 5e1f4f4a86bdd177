"""``callcenter serve`` in a child process, for the demo, the benchmarks and the tests."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    """A running ``callcenter serve`` on loopback.

    Its output is kept line by line in ``output`` (and passed to ``on_line``), or, with
    ``log_file``, written straight to that file so that a slow reader never slows the server.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        config_path: Path,
        *,
        workers: int = 2,
        port: int | None = None,
        on_line: Callable[[str], None] | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self._on_line = on_line
        command = [
            sys.executable, "-m", "callcenter", "--json-logs",
            "serve", "--config", str(config_path),
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
        ]  # fmt: skip
        sink = log_file.open("w") if log_file is not None else subprocess.PIPE
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._log_file = log_file
        self._reader: threading.Thread | None = None
        if not isinstance(sink, int):
            sink.close()  # the child has its own copy
        else:
            self._reader = threading.Thread(target=self._read, name="serve-output", daemon=True)
            self._reader.start()

    @property
    def webhook_url(self) -> str:
        """Where OpenAI (or the emulator) delivers webhooks."""
        return self.url + "/webhooks/openai"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once ``/readyz`` answers 200; RuntimeError if the process exits or stalls."""
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                output = self._log_file.read_text() if self._log_file else "".join(self.output)
                raise RuntimeError("callcenter serve exited:\n" + output)
            if time.monotonic() > deadline:
                raise RuntimeError(f"callcenter serve not ready after {timeout}s")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> int:
        """Stop gracefully (SIGTERM, as systemd or Kubernetes would) and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            if self._reader is not None:
                self._reader.join(timeout=5)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if self._on_line is not None:
                try:
                    self._on_line(line)
                except Exception:  # the top of a thread: the child's output must keep draining
                    logger.exception("serve output handler failed")
