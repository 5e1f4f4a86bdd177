"""Running the emulator outside asyncio code: in a background thread, or as a process.

``EmulatorThread`` gives synchronous code (Flask tests, the demo) the emulator on its own
event loop in a daemon thread, with thread-safe versions of the calls that change it.
``run_emulator`` serves until SIGINT/SIGTERM (``callcenter emulator``).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from callcenter.emulator.faults import FaultPlan
from callcenter.emulator.server import Emulator
from callcenter.emulator.session_state import Pacing
from callcenter.emulator.state import EmulatedCall

T = TypeVar("T")


class EmulatorThread:
    """An :class:`Emulator` running on its own event loop in a background thread.

    Takes the same keyword arguments as ``Emulator``. Reading ``calls`` and their records
    from another thread is safe enough for tests (lists and dicts only grow); use
    ``wait_for`` to wait on them.
    """

    def __init__(self, **options: Any) -> None:
        self.emulator = Emulator(**options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # read-only views of the emulator
    @property
    def port(self) -> int:
        """The port it serves on."""
        return self.emulator.port

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return self.emulator.url

    @property
    def base_url(self) -> str:
        """What to give the SDK as ``base_url``."""
        return self.emulator.base_url

    @property
    def calls(self) -> dict[str, EmulatedCall]:
        """Every call placed, by id."""
        return self.emulator.calls

    @property
    def faults(self) -> FaultPlan:
        """The fault plan (safe to change from any thread)."""
        return self.emulator.faults

    def start(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> None:
        """Start the loop thread and the server; return once it serves."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="emulator", daemon=True)
        self._thread.start()
        self._run(self.emulator.start(host, port), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server, then the loop and its thread."""
        if self._loop is None or self._thread is None:
            return
        try:
            self._run(self.emulator.stop(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop.close()
            self._loop = self._thread = None

    def place_call(self, **options: Any) -> EmulatedCall:
        """``Emulator.place_call``, from any thread."""
        return self.call(lambda: self.emulator.place_call(**options))

    def caller_hangs_up(self, call_id: str) -> bool:
        """``Emulator.caller_hangs_up``, from any thread."""
        return self.call(lambda: self.emulator.caller_hangs_up(call_id))

    def send_webhook(self, event_type: str, **options: Any) -> dict[str, Any]:
        """``Emulator.send_webhook``, from any thread."""
        return self.call(lambda: self.emulator.send_webhook(event_type, **options))

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``function()`` on the emulator's loop and return its result."""

        async def run() -> T:
            return function()

        return self._run(run(), timeout)

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01
    ) -> T:
        """Poll ``predicate`` until truthy; return its value. TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    def _run(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            work.close()
            raise RuntimeError("the emulator thread is not started")
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self._loop)
        return future.result(timeout)

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str = "sk-emulator",
    webhook_secret: str | None = None,
    webhook_url: str | None = None,
    *,
    pacing: Pacing | None = None,
    on_ready: Callable[[Emulator], None] | None = None,
) -> None:
    """Serve an emulator until SIGINT or SIGTERM; ``on_ready`` gets it once it serves.

    Without ``webhook_secret`` a fresh one is made: read it from the emulator in ``on_ready``.
    """
    emulator = Emulator(
        api_key=api_key, webhook_secret=webhook_secret, webhook_url=webhook_url, pacing=pacing
    )
    asyncio.run(_serve(emulator, host, port, on_ready))


async def _serve(
    emulator: Emulator, host: str, port: int, on_ready: Callable[[Emulator], None] | None
) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await emulator.start(host, port)
    try:
        if on_ready is not None:
            on_ready(emulator)
        await stopping.wait()
    finally:
        await emulator.stop()
