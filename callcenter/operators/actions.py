"""An operator's transfer, hang-up or instruction, delivered and audited.

Shared by the JSON API and the console (through
:meth:`callcenter.operators.services.OperatorServices.act`, after
:mod:`callcenter.operators.parsing`): :func:`execute` checks the call, delivers the command
(see :mod:`callcenter.operators.commands`) and writes the audit row, answering with an
:class:`Outcome`; :func:`audit_outcome` writes the row of a refusal. A transfer, given a
``transfer_wait``, is answered once it is over: ``transferred`` or ``transfer_failed``
with the targets tried (``transferring``, 202, if it is still under way by then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from callcenter.call.actions import OperatorCommand, OperatorTransfer
from callcenter.call.runtime import Runtime
from callcenter.call.vocabulary import CallStatus
from callcenter.operators.audit import AuditTrail
from callcenter.operators.commands import DELIVERED, deliver, describe_command
from callcenter.operators.transfers import TransferReport, await_transfer, last_event_id
from callcenter.store import Store
from callcenter.store.operators import OperatorStore

__all__ = ["Outcome", "audit_outcome", "execute"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an action went: an HTTP status, a code (or result) and a message for people."""

    status: int
    code: str
    message: str
    command_id: int | None = None
    detail: Mapping[str, object] = field(default_factory=dict)  # more of the answer

    @property
    def ok(self) -> bool:
        """The command was delivered (200) or queued (202)."""
        return self.status < 300


def execute(
    *,
    calls: Store,
    runtime: Runtime,
    store: OperatorStore,
    audit: AuditTrail,
    clock: Callable[[], datetime],
    call_id: str,
    command: OperatorCommand,
    client: str,
    wait: float,
    transfer_wait: float | None = None,
) -> Outcome:
    """Check the call is live, deliver ``command``, audit; what happened.

    ``transfer_wait``: seconds to wait for a transfer to be over (None: answer once it
    is delivered).
    """
    kind, payload = describe_command(command)
    call = calls.get_call(call_id)
    if call is None:
        outcome = Outcome(404, "unknown_call", f"no call {call_id!r}")
    elif call.status != CallStatus.ACTIVE:
        outcome = Outcome(409, "call_not_live", f"call {call_id} is {call.status}, not active")
    else:
        waits = isinstance(command, OperatorTransfer) and transfer_wait is not None
        after_id = last_event_id(calls, call_id) if waits else 0
        delivery = deliver(runtime, store, call_id, command, clock=clock, wait=wait)
        if delivery.result is None:
            outcome = Outcome(202, "pending", "queued for the worker holding the call")
        elif delivery.result == DELIVERED and waits and transfer_wait is not None:
            report = await_transfer(calls, call_id, after_id, wait=transfer_wait)
            outcome = _transfer_outcome(report)
        elif delivery.result == DELIVERED:
            outcome = Outcome(200, DELIVERED, f"{kind} passed to the call")
        else:
            outcome = Outcome(409, "call_not_live", f"call {call_id} is no longer held")
        outcome = Outcome(
            outcome.status, outcome.code, outcome.message, delivery.command_id, outcome.detail
        )
    audit_outcome(audit, command.operator, kind, call_id, client, outcome, payload)
    return outcome


def _transfer_outcome(report: TransferReport) -> Outcome:
    """The answer to a delivered transfer: how it ended, or that it is still under way."""
    detail = {"targets": report.attempts, "target": report.target}
    tried = ", ".join(f"{a['target']} ({a['result']})" for a in report.attempts) or "none"
    if not report.final:
        message = f"the transfer is under way; tried so far: {tried}"
        return Outcome(202, report.result, message, detail=detail)
    return Outcome(200, report.result, f"transfer {report.result}; tried: {tried}", detail=detail)


def audit_outcome(
    audit: AuditTrail,
    operator: str,
    action: str,
    call_id: str,
    client: str,
    outcome: Outcome,
    payload: dict[str, object] | None = None,
) -> None:
    """Write the audit row of an action, whether it went through or was refused."""
    result = outcome.code if outcome.ok else f"refused:{outcome.status}:{outcome.code}"
    detail = {**(payload or {}), "command_id": outcome.command_id, **outcome.detail}
    audit.record(
        operator=operator,
        action=action,
        call_id=call_id,
        result=result,
        client=client,
        detail=detail,
    )
