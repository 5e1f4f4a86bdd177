"""What the emulated caller does and what the emulated model answers: steps as plain data.

A call's script is a sequence of steps run in order once a sideband is attached (and
resumed where it stopped after a reattach). ``ModelSay`` and ``ModelCallTool`` only queue
what the model's next responses will be; those placed right after a ``Say``, ``Silence``
or ``WaitFor`` are queued before that step runs, as the answer to what comes of it. So a
script reads like the call it describes::

    ModelSay("Thanks for calling Acme, how can I help?")   # the greeting's text
    WaitFor("output_audio_buffer.stopped")                 # the greeting has been heard
    Say("Where is my order 42?")                           # a turn; the model answers with…
    ModelCallTool("lookup_order", {"order_id": "42"})      # …a function call
    WaitFor("function_call_output")                        # the controller ran the tool
    ModelSay("It shipped yesterday.")                      # the answer after the tool output
    WaitFor("output_audio_buffer.stopped")
    HangUp()

``steps_from_json`` / ``step_to_json`` map steps to JSON objects such as
``{"type": "say", "text": "hi"}`` (the control API and scenario files use them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

DTMF_KEYS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class Say:
    """The caller speaks ``text`` once the assistant is quiet (or over it, with ``barge_in``).

    ``barge_in`` interrupts the next in-band audio response while it is being generated.
    ``transcription`` places the input transcription: ``"before"`` the model's response,
    ``"after"`` it has started (out of order, as the real API may), or ``"failed"``.
    """

    text: str
    barge_in: bool = False
    transcription: Literal["before", "after", "failed"] = "before"


@dataclass(frozen=True)
class ModelSay:
    """The model's next response speaks ``text`` (an out-of-band response's, if so marked)."""

    text: str
    out_of_band: bool = False


@dataclass(frozen=True)
class ToolCall:
    """One function call inside a ``ModelCallTool`` response."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCallTool:
    """The model's next response calls ``name`` (and the calls in ``also``), then waits.

    ``say`` is a spoken preamble placed before the calls in the same response.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    also: tuple[ToolCall, ...] = ()
    say: str | None = None

    def calls(self) -> tuple[ToolCall, ...]:
        """Every call of the response, in order."""
        return (ToolCall(self.name, self.arguments), *self.also)


@dataclass(frozen=True)
class ModelCallMcp:
    """The model's next response calls the MCP tool ``name`` of the server ``server_label``.

    With ``approval`` the response ends with an ``mcp_approval_request``; the call runs (and
    ``output`` comes back) in the next response if the client approved it. Without, the call
    runs at once. See :mod:`callcenter.emulator.mcp`.
    """

    server_label: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    output: str = "{}"
    approval: bool = True
    error: str | None = None  # the call fails: response.mcp_call.failed, the item's error


@dataclass(frozen=True)
class Dtmf:
    """The caller presses a keypad key (0-9, *, #, A-D)."""

    key: str

    def __post_init__(self) -> None:
        if self.key not in DTMF_KEYS:
            raise ValueError(f"Dtmf key must be one of 0-9, *, #, A-D, not {self.key!r}")


@dataclass(frozen=True)
class Silence:
    """The caller says nothing: server VAD with ``idle_timeout_ms`` reports it (after ``ms``,
    default the timeout); otherwise nothing is sent and the caller is quiet for ``ms``."""

    ms: int | None = None


@dataclass(frozen=True)
class Wait:
    """Pause the script."""

    seconds: float


@dataclass(frozen=True)
class WaitFor:
    """Pause until an event of ``kind`` happens (or happened since the previous step began).

    ``kind`` is a client event type the controller sends (``"response.create"``,
    ``"session.update"``…), ``"function_call_output"`` (an item the controller created), a
    server event type the emulator sent (``"response.done"``,
    ``"output_audio_buffer.stopped"``…), or a calls-endpoint request of the live call
    (``"refer"``, answered with any status). Counting from the previous step's start makes a
    wait immune to the controller being faster than the script; each occurrence satisfies
    one WaitFor only. After ``timeout`` seconds the script stops and the call records a
    script error.
    """

    kind: str
    timeout: float = 30.0


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up: the sideband closes at once (1000) and the call ends."""


@dataclass(frozen=True)
class DropSocket:
    """The network drops the sideband (1006: TCP cut) or the service restarts (1012).

    The call goes on; the script resumes with the next step once a sideband reattaches.
    """

    code: int = 1006


@dataclass(frozen=True)
class ServerError:
    """The server sends an ``error`` event that no client event caused."""

    message: str = "The server had an error while processing your request."
    code: str | None = None
    type: str = "server_error"


@dataclass(frozen=True)
class McpListFailed:
    """The server cannot list the tools of the MCP server ``server_label``: an
    ``mcp_list_tools`` item, ``mcp_list_tools.in_progress``, then ``mcp_list_tools.failed``."""

    server_label: str


@dataclass(frozen=True)
class RateLimits:
    """The server sends ``rate_limits.updated``."""

    requests_remaining: int = 4999
    tokens_remaining: int = 39000


Step = (
    Say
    | ModelSay
    | ModelCallTool
    | ModelCallMcp
    | Dtmf
    | Silence
    | Wait
    | WaitFor
    | HangUp
    | DropSocket
    | ServerError
    | McpListFailed
    | RateLimits
)

STEP_TYPES: dict[str, type[Step]] = {
    "say": Say,
    "model_say": ModelSay,
    "model_call_tool": ModelCallTool,
    "model_call_mcp": ModelCallMcp,
    "dtmf": Dtmf,
    "silence": Silence,
    "wait": Wait,
    "wait_for": WaitFor,
    "hang_up": HangUp,
    "drop_socket": DropSocket,
    "server_error": ServerError,
    "mcp_list_failed": McpListFailed,
    "rate_limits": RateLimits,
}
_NAMES = {cls: name for name, cls in STEP_TYPES.items()}


def step_to_json(step: Step) -> dict[str, Any]:
    """``step`` as a JSON object: ``{"type": <snake name>, <its fields>}``."""
    fields = dataclasses.asdict(step)
    if isinstance(step, ModelCallTool):
        fields["also"] = [dataclasses.asdict(call) for call in step.also]
    return {"type": _NAMES[type(step)], **fields}


def step_from_json(data: Mapping[str, Any], where: str = "step") -> Step:
    """The step a JSON object describes; ``ValueError`` naming ``where`` if it is invalid."""
    kind = data.get("type")
    cls = STEP_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown step type {kind!r}; known: {', '.join(STEP_TYPES)}")
    known = {f.name for f in dataclasses.fields(cls)}
    fields = {k: v for k, v in data.items() if k != "type"}
    for key in fields:
        if key not in known:
            raise ValueError(
                f"{where}: {kind} has no field {key!r}; known: {', '.join(sorted(known))}"
            )
    if cls is ModelCallTool:
        fields["also"] = tuple(_tool_call(call, f"{where}.also") for call in fields.get("also", ()))
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def steps_from_json(data: Iterable[Mapping[str, Any]]) -> tuple[Step, ...]:
    """A whole script from a JSON array of step objects."""
    return tuple(step_from_json(item, f"script[{i}]") for i, item in enumerate(data))


def _tool_call(data: Mapping[str, Any], where: str) -> ToolCall:
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise ValueError(f"{where}: each call needs a 'name'")
    return ToolCall(data["name"], dict(data.get("arguments", {})))
