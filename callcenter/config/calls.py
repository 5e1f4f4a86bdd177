"""Validate what a route says about its held calls: its keypad map and its MCP servers.

Part of :mod:`callcenter.config.build`; every check raises
:class:`~callcenter.errors.ConfigError` naming the key and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from callcenter.call.mcp import McpServer
from callcenter.config.model import DtmfAction, Escalation
from callcenter.config.reader import Section, quoted, type_name

__all__ = ["DTMF_KEYS", "dtmf_map", "mcp_servers"]

DTMF_KEYS = "0123456789*#ABCD"
_DTMF_FORMS = '"escalate", "end" or "refer:<target>"'
_MCP_KEYS = "server_label server_url allowed_tools auto_approve headers server_description"
_HTTP_HEADER_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def dtmf_map(
    section: Section, targets: Mapping[str, str], escalation: Escalation | None
) -> dict[str, DtmfAction]:
    """A route's keypad map: ``{ "0" = "escalate", "5" = "refer:sales-desk", "9" = "end" }``.

    A ``refer`` names a configured target; the escalation key may only ``escalate``.
    """
    actions: dict[str, DtmfAction] = {}
    for key, value in section.data.items():
        if len(key) != 1 or key.upper() not in DTMF_KEYS:
            raise section.error(key, f"expected one keypad key (0-9, *, #, A-D), got {quoted(key)}")
        if not isinstance(value, str):
            raise section.error(key, f"expected {_DTMF_FORMS}, got {type_name(value)}")
        verb, colon, target = value.partition(":")
        if value in ("escalate", "end"):
            action = DtmfAction("escalate" if value == "escalate" else "end")
        elif verb == "refer" and colon and target:
            if target not in targets:
                raise section.error(key, f"no target named {quoted(target)}")
            action = DtmfAction("refer", target, targets[target])
        else:
            raise section.error(key, f"expected {_DTMF_FORMS}, got {quoted(value)}")
        if escalation is not None and escalation.dtmf == key.upper() and action.kind != "escalate":
            raise section.error(
                key, f"escalation.dtmf already makes {quoted(key)} escalate; use another key"
            )
        actions[key.upper()] = action
    return actions


def mcp_servers(route: Section) -> tuple[McpServer, ...]:
    """The route's ``[[routes.mcp]]`` tables."""
    servers: list[McpServer] = []
    for section in route.tables("mcp"):
        section.check_keys(_MCP_KEYS.split())
        label = section.required_text("server_label")
        if label in (server.server_label for server in servers):
            raise section.error("server_label", f"duplicate server_label {quoted(label)}")
        headers = section.table("headers")
        allowed = section.texts("allowed_tools") if section.has("allowed_tools") else None
        try:
            servers.append(
                McpServer(
                    server_label=label,
                    server_url=section.required_text("server_url"),
                    allowed_tools=allowed,
                    auto_approve=section.texts("auto_approve"),
                    headers=MappingProxyType(_header_values(headers) if headers else {}),
                    server_description=section.text("server_description"),
                )
            )
        except ValueError as error:
            raise section.error(None, str(error)) from None
    return tuple(servers)


def _header_values(section: Section) -> dict[str, str]:
    """HTTP headers for an MCP server; a value may read ``env:NAME`` (resolved at start-up)."""
    values: dict[str, str] = {}
    for name, value in section.data.items():
        if not _HTTP_HEADER_RE.fullmatch(name):
            raise section.error(name, f"{quoted(name)} is not an HTTP header name")
        if not isinstance(value, str) or not value.strip():
            raise section.error(name, "expected a non-empty string")
        values[name] = value
    return values
