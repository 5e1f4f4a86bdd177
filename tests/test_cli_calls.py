"""`callcenter calls` against a real server: list, show, transfer, hangup, instruct, tail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.call.vocabulary import EventKind
from callcenter.cli.calls import calls
from callcenter.emulator import CallState, EmulatorThread, Say, Wait
from tests.harness import InProcessController, wait_for
from tests.operator_support import ADA, GREETED, Api, live_call, operator_center
from tests.sideband_support import CallCenter, finished, sent


@pytest.fixture
def controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[InProcessController]:
    """A controller with the test operators' tokens."""
    center: CallCenter = operator_center(tmp_path, emulator, controller_env)
    yield center.start()
    center.stop()


def run(controller: InProcessController, *args: str, token: str = ADA) -> Result:
    """Run `callcenter calls ARGS` with the URL and token from the environment."""
    env = {"CALLCENTER_URL": controller.url, "CALLCENTER_OPERATOR_TOKEN": token}
    return CliRunner().invoke(calls, list(args), env=env)


def test_list_prints_a_table(emulator: EmulatorThread, controller: InProcessController) -> None:
    """`calls list` prints a header and one row per call."""
    call = live_call(emulator, Api(controller.url))
    result = run(controller, "list", "--status", "active")
    assert result.exit_code == 0, result.output
    header, *rest = result.output.splitlines()
    assert header.split()[:3] == ["call_id", "status", "route"]
    assert any(line.startswith(call.call_id) and "active" in line for line in rest)
    assert call.call_id in run(controller, "list", "--outcome", "accepted").output
    assert call.call_id not in run(controller, "list", "--outcome", "completed").output
    assert call.call_id not in run(controller, "list", "--text", "zanzibar").output


def test_show_prints_the_transcript(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """`calls show` prints the call and what was said."""
    call = live_call(emulator, Api(controller.url), [*GREETED, Say("Hello there."), Wait(30)])
    wait_for(lambda: "caller: Hello there." in run(controller, "show", call.call_id).output)
    assert f"call_id: {call.call_id}" in run(controller, "show", call.call_id).output


def test_show_pretty_prints_tool_calls_whole(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """`calls show` prints a tool call's arguments and result indented, never cut off."""
    call = live_call(emulator, Api(controller.url))
    long_note = "x" * 300
    tool = {"name": "lookup", "arguments": '{"order_id": "A1"}', "output": {"note": long_note},
            "ok": True, "error": None, "duration_ms": 3.0}  # fmt: skip
    controller.services.store.add_event(call.call_id, EventKind.TOOL, tool, datetime.now(UTC))
    output = run(controller, "show", call.call_id).output
    assert "tool: lookup (3.0 ms)" in output
    assert '    {\n      "order_id": "A1"\n    }' in output
    assert long_note in output
    assert "..." not in output


def test_transfer_refers_the_call(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """`calls transfer ID sales` transfers the call."""
    call = live_call(emulator, Api(controller.url))
    result = run(controller, "transfer", call.call_id, "sales")
    assert result.exit_code == 0, result.output
    assert f"transfer {call.call_id}: transferred" in result.output
    assert "sales: transferred" in result.output
    finished(controller, call.call_id)
    assert call.refer_target == "tel:+14155550199"


def test_hangup_ends_the_call(emulator: EmulatorThread, controller: InProcessController) -> None:
    """`calls hangup ID` hangs the call up."""
    call = live_call(emulator, Api(controller.url))
    assert run(controller, "hangup", call.call_id).exit_code == 0
    finished(controller, call.call_id)
    assert call.state is CallState.ENDED


def test_instruct_reaches_the_sideband(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """`calls instruct ID TEXT` puts a system item on the call's sideband."""
    call = live_call(emulator, Api(controller.url))
    assert run(controller, "instruct", call.call_id, "Be brief.").exit_code == 0

    def instructed() -> bool:
        items = [e["item"] for e in sent(call, "conversation.item.create")]
        return any(i.get("role") == "system" for i in items)

    wait_for(instructed, what="the instruction")


def test_errors_exit_non_zero_with_the_message(controller: InProcessController) -> None:
    """A wrong token or an unknown call: exit 1 and the API's error on stderr."""
    wrong = run(controller, "list", token="wrong-token-000000")
    assert wrong.exit_code == 1
    assert "401 unauthorized" in wrong.output
    unknown = run(controller, "hangup", "rtc_nope")
    assert unknown.exit_code == 1
    assert "404 unknown_call" in unknown.output


def test_tail_follows_the_transcript_until_the_end(
    emulator: EmulatorThread, controller: InProcessController
) -> None:
    """`calls tail ID` prints lines as they are said and stops when the call ends."""
    api = Api(controller.url)
    call = live_call(emulator, api)
    result: list[Result] = []
    thread = threading.Thread(target=lambda: result.append(run(controller, "tail", call.call_id)))
    thread.start()
    api.post(f"/calls/{call.call_id}/hangup")
    thread.join(timeout=15)
    (tailed,) = result
    assert tailed.exit_code == 0, tailed.output
    lines = tailed.output.splitlines()
    assert lines[0] == "agent: Hello, Acme support."
    assert lines[-1].startswith("-- end:")


def test_a_missing_token_is_a_usage_error() -> None:
    """No --token and no CALLCENTER_OPERATOR_TOKEN: exit 2 saying how to give one."""
    result = CliRunner().invoke(calls, ["list"], env={"CALLCENTER_OPERATOR_TOKEN": ""})
    assert result.exit_code == 2
    assert "CALLCENTER_OPERATOR_TOKEN" in result.output
