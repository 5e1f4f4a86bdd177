"""OpenAI's side of a SIP call, emulated on loopback: REST, webhooks and the sideband.

    emulator = Emulator(webhook_url="http://127.0.0.1:8000/webhooks/openai")
    await emulator.start()                      # or EmulatorThread(...).start() from sync code
    client = AsyncOpenAI(api_key=emulator.api_key, base_url=emulator.base_url)
    call = emulator.place_call(script=[Say("I need a human"), ModelCallTool("transfer_to_human")])
    ...                                         # the controller accepts, attaches, answers
    assert call.state is CallState.REFERRED

Modules: ``server`` (the handle, which wires the endpoints), ``rest`` / ``sideband`` /
``control`` / ``webhook_endpoints`` (endpoints, each acting on the ``host`` interface, never on
each other; ``http_errors`` is what they share), ``state`` (a call's state machine),
``session_state`` / ``responses`` / ``conversation`` / ``caller`` (a session's shared state,
the model acting on it, the client events, the scripted caller), ``channel`` (ordered delivery
to sockets), ``events`` (server event builders), ``webhooks`` and ``webhook_registry``
(delivery, and the registered endpoints), ``faults``, ``script``, ``validation`` and ``schema``
(the SDK's types as the contract), ``runner`` (thread and process).
"""

from __future__ import annotations

from callcenter.emulator.faults import (
    FaultPlan,
    RestFault,
    SidebandFault,
    TransferFault,
    fault_from_json,
)
from callcenter.emulator.runner import EmulatorThread, run_emulator
from callcenter.emulator.schema import check_client_event, server_event_problem
from callcenter.emulator.script import (
    DropSocket,
    Dtmf,
    HangUp,
    McpListFailed,
    ModelCallMcp,
    ModelCallTool,
    ModelSay,
    RateLimits,
    Say,
    ServerError,
    Silence,
    Step,
    ToolCall,
    Wait,
    WaitFor,
    step_from_json,
    step_to_json,
    steps_from_json,
)
from callcenter.emulator.server import Emulator
from callcenter.emulator.session_state import REALISTIC_SERVER, Pacing
from callcenter.emulator.state import CallState, EmulatedCall, RestRequest, WebhookAttempt
from callcenter.emulator.webhooks import (
    Delivery,
    RedeliveryPolicy,
    new_webhook_secret,
    sign_webhook,
)

__all__ = [
    "CallState",
    "Delivery",
    "DropSocket",
    "Dtmf",
    "EmulatedCall",
    "Emulator",
    "EmulatorThread",
    "FaultPlan",
    "HangUp",
    "ModelCallMcp",
    "ModelCallTool",
    "ModelSay",
    "Pacing",
    "REALISTIC_SERVER",
    "RateLimits",
    "RedeliveryPolicy",
    "RestFault",
    "RestRequest",
    "Say",
    "McpListFailed",
    "ServerError",
    "SidebandFault",
    "TransferFault",
    "Silence",
    "Step",
    "ToolCall",
    "Wait",
    "WaitFor",
    "WebhookAttempt",
    "check_client_event",
    "fault_from_json",
    "new_webhook_secret",
    "run_emulator",
    "server_event_problem",
    "sign_webhook",
    "step_from_json",
    "step_to_json",
    "steps_from_json",
]
