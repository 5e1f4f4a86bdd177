"""Support for the sideband tests: a controller on a test config, and what to read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcenter.call.runtime import RuntimeTimeouts
from callcenter.emulator import EmulatedCall, EmulatorThread
from callcenter.settings import Settings
from callcenter.store import CallRecord, Store
from tests.harness import InProcessController, wait_for

SUPPORT = "+18005550100"
GREETING = "Hello, Acme support."
HANDOFF = "Connecting you to a colleague."
TOOLS = '["lookup_order", "flaky_lookup", "stuck_lookup", "slow_lookup", "hold_line", ' + (
    '"transfer_to_human", "end_call"]'
)
ESCALATION = (
    'target = "desk", phrases = ["human", "real person"], dtmf = "0", '
    "max_tool_failures = 2, max_silences = 2, max_errors = 2"
)
CONFIG = f"""
tool_modules = ["tests.sideband_tools"]
slow_tool_notice = 0.2

[[targets]]
name = "desk"
uri = "sip:desk@pbx.example.com"
fallback = "backup"
ticket_header = true

[[targets]]
name = "backup"
uri = "sip:backup@pbx.example.com"

[[targets]]
name = "sales"
uri = "tel:+14155550199"

[[routes]]
name = "support"
match = {{ to = ["{SUPPORT}"] }}
instructions = "Help the caller."
greeting = "{GREETING}"
handoff = "{HANDOFF}"
tools = {TOOLS}
escalation = {{ {ESCALATION} }}
dtmf = {{ "5" = "refer:sales", "9" = "end" }}

[[routes.mcp]]
server_label = "crm"
server_url = "https://crm.example.com/mcp"
auto_approve = ["lookup_customer"]
"""
FAST = RuntimeTimeouts(line_said=5.0, summary=5.0, reattach_window=5.0, reattach_delay=0.05)
ENDED = ("ended", "referred", "failed")


class CallCenter:
    """Starts controllers on a test config against the test's emulator and store."""

    def __init__(self, tmp_path: Path, emulator: EmulatorThread, env: dict[str, str]) -> None:
        self._tmp_path = tmp_path
        self._emulator = emulator
        self._env = env
        self._started: list[InProcessController] = []

    def start(
        self, config: str = CONFIG, *, timeouts: RuntimeTimeouts = FAST
    ) -> InProcessController:
        """A controller on ``config``, receiving the emulator's webhooks."""
        path = self._tmp_path / f"callcenter-{len(self._started)}.toml"
        path.write_text(config)
        settings = Settings.from_env(self._env, config_path=path)
        with Store.open(settings.database_url) as store:
            store.migrate()
        controller = InProcessController(settings, runtime_timeouts=timeouts)
        self._started.append(controller)
        self._emulator.emulator.webhook_url = controller.webhook_url
        return controller

    def stop(self) -> None:
        """Stop every controller started."""
        for controller in self._started:
            controller.stop()


def config_with(*replacements: tuple[str, str]) -> str:
    """The test config with some text replaced."""
    text = CONFIG
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


def finished(controller: InProcessController, call_id: str) -> CallRecord:
    """The call's record once the runtime has recorded how it ended."""
    store = controller.services.store

    def over() -> CallRecord | None:
        record = store.get_call(call_id)
        return record if record is not None and record.status in ENDED else None

    wait_for(over, what=f"{call_id} to end")
    record = over()
    assert record is not None
    wait_for(lambda: call_id not in controller.services.runtime.active_calls(), what="release")
    return record


def events(controller: InProcessController, call_id: str, kind: str) -> list[dict[str, Any]]:
    """The data of the call's stored events of ``kind``."""
    return [e.data for e in controller.services.store.events(call_id) if e.kind == kind]


def kinds(controller: InProcessController, call_id: str) -> list[str]:
    """The kinds of the call's stored events, in order."""
    return [e.kind for e in controller.services.store.events(call_id)]


def sent(call: EmulatedCall, kind: str) -> list[dict[str, Any]]:
    """The client events of ``kind`` the controller sent on the call's sideband."""
    return [e for e in call.client_events if e.get("type") == kind]


def outputs(call: EmulatedCall) -> list[dict[str, Any]]:
    """The function_call_output items the controller created."""
    items = [e["item"] for e in sent(call, "conversation.item.create")]
    return [item for item in items if item["type"] == "function_call_output"]


def served(call: EmulatedCall, kind: str) -> list[dict[str, Any]]:
    """The server events of ``kind`` the emulator sent."""
    return [e for e in call.server_events if e.get("type") == kind]


def wait_sent(call: EmulatedCall, predicate: Callable[[dict[str, Any]], bool], what: str) -> None:
    """Wait until the controller sent a client event matching ``predicate``."""
    wait_for(lambda: any(predicate(e) for e in list(call.client_events)), what=what)


def says(event: dict[str, Any], text: str) -> bool:
    """Whether a client event is a response.create asking to say ``text``."""
    if event.get("type") != "response.create":
        return False
    return text in str(event.get("response", {}).get("instructions", ""))
