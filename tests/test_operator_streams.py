"""SSE streams are capped per worker, so that open streams never starve webhooks of threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from callcenter.config.loader import example_config_path
from callcenter.emulator import CallState, EmulatorThread
from callcenter.errors import ConfigError
from callcenter.settings import parse_max_streams
from tests.harness import GunicornController, InProcessController
from tests.operator_support import (
    ADA,
    TOKENS,
    Api,
    error_code,
    live_call,
    logged_in,
    operator_center,
)


@pytest.fixture
def served(
    emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[GunicornController]:
    """`callcenter serve` with one worker of 8 threads (so 4 streams at most) and tokens."""
    env = {**controller_env, "CALLCENTER_OPERATOR_TOKENS": TOKENS}
    controller = GunicornController(env, example_config_path(), workers=1)
    emulator.emulator.webhook_url = controller.webhook_url
    yield controller
    controller.stop()


@dataclass
class OpenStream:
    """A stream held open: its status and its lines still to come."""

    status_code: int
    lines: Iterator[str]

    def last_event(self) -> str:
        """The name of the last event sent before the stream ended."""
        names = [line for line in self.lines if line.startswith("event: ")]
        return names[-1].removeprefix("event: ")


def open_stream(
    stack: contextlib.ExitStack, url: str, client: httpx.Client | None = None
) -> OpenStream:
    """A stream held open until ``stack`` closes, its first line already read."""
    client = client or stack.enter_context(httpx.Client(timeout=10))
    headers = {"Authorization": f"Bearer {ADA}"}
    response = stack.enter_context(client.stream("GET", url, headers=headers))
    lines = response.iter_lines()  # kept: dropping it would close the connection
    if response.status_code == 200:
        next(lines)  # the stream's opening comment: a thread serves it
    return OpenStream(response.status_code, lines)


def test_past_the_cap_a_stream_is_503_and_webhooks_are_still_answered(
    served: GunicornController, emulator: EmulatorThread
) -> None:
    """With 4 of 8 threads streaming, a fifth stream is 503 and a new call is still accepted."""
    api = Api(served.url)
    call = live_call(emulator, api)
    url = f"{api.url}/calls/{call.call_id}/stream"
    with contextlib.ExitStack() as stack:
        streams = [open_stream(stack, url) for _ in range(4)]
        assert [s.status_code for s in streams] == [200] * 4
        refused = httpx.get(url, headers=api.headers(), timeout=10)
        assert (refused.status_code, error_code(refused)) == (503, "too_many_streams")
        assert int(refused.headers["Retry-After"]) >= 1
        second = live_call(emulator, api)  # its webhook found a free thread
        assert second.state is CallState.ACCEPTED
        assert api.post(f"/calls/{call.call_id}/hangup").status_code == 200
        for stream in streams:  # each ends with the call, and gives its slot back
            assert stream.last_event() == "end"
        with httpx.stream(
            "GET", f"{api.url}/calls/{second.call_id}/stream", headers=api.headers(), timeout=10
        ) as reopened:
            assert reopened.status_code == 200


def test_console_streams_count_against_the_same_cap(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> None:
    """With a cap of 1 and an API stream open, the console's live stream is 503."""
    center = operator_center(tmp_path, emulator, {**controller_env, "CALLCENTER_MAX_STREAMS": "1"})
    controller: InProcessController = center.start()
    try:
        api = Api(controller.url)
        call = live_call(emulator, api)
        console = logged_in(controller)
        with contextlib.ExitStack() as stack:
            stream = open_stream(stack, f"{api.url}/calls/{call.call_id}/stream")
            refused = console.get("/console/live")
            assert (refused.status_code, error_code(refused)) == (503, "too_many_streams")
            assert api.post(f"/calls/{call.call_id}/hangup").status_code == 200
            assert stream.last_event() == "end"
            assert open_stream(stack, controller.url + "/console/live", console).status_code == 200
    finally:
        center.stop()


@pytest.mark.parametrize(("value", "count"), [("", None), (" ", None), ("6", 6)])
def test_the_stream_cap_is_read_from_the_environment(value: str, count: int | None) -> None:
    """CALLCENTER_MAX_STREAMS: a count, or None (half the threads) when unset."""
    assert parse_max_streams(value) == count


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_a_bad_stream_cap_is_a_config_error(value: str) -> None:
    """Zero, negative or non-integer caps stop the start with the variable's name."""
    with pytest.raises(ConfigError, match="CALLCENTER_MAX_STREAMS"):
        parse_max_streams(value)
