"""One parser for an operator's command, whether it came from the JSON API or the console.

:func:`parse_command` turns an action name and its fields (a JSON body, or a console form
read into the same shape) into an :class:`~callcenter.call.actions.OperatorCommand`, or an
:class:`~callcenter.operators.actions.Outcome` saying why it is refused. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from callcenter.call.actions import (
    OperatorCommand,
    OperatorHangup,
    OperatorInstruct,
    OperatorTransfer,
)
from callcenter.config.loader import Config
from callcenter.operators.actions import Outcome
from callcenter.sip.invite import is_transfer_uri

__all__ = ["ACTIONS", "MAX_INSTRUCTION", "parse_command"]

ACTIONS: Final = ("transfer", "hangup", "instruct")
MAX_INSTRUCTION: Final = 4000
MAX_TARGET: Final = 512  # a name or a tel:/sip: URI; longer is no target at all


def parse_command(
    action: str, body: object, *, operator: str, config: Config
) -> OperatorCommand | Outcome:
    """The command ``operator`` asks for, or the refusal (status, code, message)."""
    if action == "hangup":
        return OperatorHangup(operator)
    if action not in ACTIONS:
        return Outcome(404, "unknown_action", f"no action {action[:40]!r}; one of {ACTIONS}")
    if not isinstance(body, Mapping):
        return Outcome(400, "bad_request", "the body must be a JSON object")
    if action == "transfer":
        return _transfer(body.get("target"), operator, config)
    return _instruct(body.get("text"), operator)


def _transfer(target: object, operator: str, config: Config) -> OperatorTransfer | Outcome:
    if not isinstance(target, str) or not target.strip() or len(target) > MAX_TARGET:
        return Outcome(422, "invalid_body", "target must be a target name or a tel:/sip: URI")
    target = target.strip()
    if target in config.targets:
        return OperatorTransfer(target, operator)
    if not is_transfer_uri(target):
        names = ", ".join(config.targets) or "none"
        return Outcome(422, "unknown_target", f"no target {target!r}; configured: {names}")
    if not config.operators.allow_uri_targets:
        return Outcome(403, "uri_targets_disabled", "transfers to typed URIs are disabled")
    return OperatorTransfer(target, operator)


def _instruct(text: object, operator: str) -> OperatorInstruct | Outcome:
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_INSTRUCTION:
        return Outcome(422, "invalid_body", f"text must be 1 to {MAX_INSTRUCTION} characters")
    return OperatorInstruct(text.strip(), operator)
