"""MCP servers of a route, and the policy that answers their approval requests.

The Realtime API itself calls a route's MCP servers; callcenter only declares them in the
accept config and approves or denies each tool call the model wants to make. The server is
told to ask for approval of every call (``require_approval: "always"``) so that this policy,
and nothing on the server side, decides: a tool runs only when it is in the server's
``auto_approve`` list. Everything here is pure; the call session sends the items.

In the config (one table per server under a route)::

    [[routes.mcp]]
    server_label = "crm"
    server_url = "https://crm.example.com/mcp"
    allowed_tools = ["lookup_customer", "create_ticket"]   # the tools the model may see
    auto_approve = ["lookup_customer"]                     # the tools that may run
    headers = { "X-Api-Key" = "env:CRM_KEY" }              # env:NAME is read at start-up
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from callcenter.config.reader import quoted

if TYPE_CHECKING:  # annotations only: the openai types package is slow to import
    from openai.types.realtime import RealtimeMcpApprovalRequest
    from openai.types.realtime.realtime_mcp_approval_response_param import (
        RealtimeMcpApprovalResponseParam,
    )
    from openai.types.realtime.realtime_tools_config_param import Mcp

__all__ = [
    "ENV_PREFIX",
    "McpServer",
    "approval_decision",
    "approval_response_item",
    "mcp_session_tool",
    "resolve_headers",
]

ENV_PREFIX = "env:"
_LABEL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ITEM_ID_LENGTH = 32  # the Realtime API's limit on client-made item ids


@dataclass(frozen=True, slots=True, repr=False)
class McpServer:
    """One MCP server a route's model may use.

    ``allowed_tools`` None shows the model every tool the server lists; ``auto_approve``
    names the tools whose calls are approved, every other call is denied. ``headers`` values
    may read ``env:NAME`` until :func:`resolve_headers` replaces them; they are secrets, so
    ``repr`` shows only their names. Raises ValueError for an inconsistent server.
    """

    server_label: str
    server_url: str
    allowed_tools: tuple[str, ...] | None = None
    auto_approve: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    server_description: str | None = None

    def __post_init__(self) -> None:
        if not _LABEL_RE.fullmatch(self.server_label):
            raise ValueError(
                f"server_label {quoted(self.server_label)} must be 1-64 letters, digits, '_' or '-'"
            )
        if not self.server_url.startswith(("https://", "http://")):
            raise ValueError(f"server_url {quoted(self.server_url)} must be an http(s):// URL")
        if self.allowed_tools == ():
            raise ValueError("allowed_tools: an empty list allows nothing; leave it out instead")
        if self.allowed_tools is not None:
            for name in self.auto_approve:
                if name not in self.allowed_tools:
                    raise ValueError(f"auto_approve: {quoted(name)} is not in allowed_tools")

    def __repr__(self) -> str:
        headers = ", ".join(f"{name}=***" for name in self.headers)
        return (
            f"McpServer(server_label={self.server_label!r}, server_url={self.server_url!r}, "
            f"allowed_tools={self.allowed_tools!r}, auto_approve={self.auto_approve!r}, "
            f"headers={{{headers}}})"
        )


def resolve_headers(server: McpServer, environ: Mapping[str, str]) -> McpServer:
    """``server`` with each ``env:NAME`` header value replaced by ``environ[NAME]``.

    Raises ValueError naming the header and the variable when the variable is unset or empty.
    """
    headers: dict[str, str] = {}
    for name, value in server.headers.items():
        if _is_env(value):
            variable = value.removeprefix(ENV_PREFIX)
            value = environ.get(variable, "")
            if not value:
                raise ValueError(
                    f"header {quoted(name)} of MCP server {quoted(server.server_label)} reads the "
                    f"environment variable {variable}, which is not set"
                )
        headers[name] = value
    return replace(server, headers=MappingProxyType(headers))


def mcp_session_tool(server: McpServer) -> Mcp:
    """The ``mcp`` tool to declare in the session (accept) config for ``server``.

    Every call needs approval, which :func:`approval_decision` gives. Raises ValueError when
    a header still reads ``env:NAME`` (call :func:`resolve_headers` first).
    """
    tool: Mcp = {
        "type": "mcp",
        "server_label": server.server_label,
        "server_url": server.server_url,
        "require_approval": "always",
    }
    if server.allowed_tools is not None:
        tool["allowed_tools"] = list(server.allowed_tools)
    if server.headers:
        unresolved = [name for name, value in server.headers.items() if _is_env(value)]
        if unresolved:
            raise ValueError(
                f"header {quoted(unresolved[0])} of MCP server {quoted(server.server_label)} "
                "is not resolved from the environment yet"
            )
        tool["headers"] = dict(server.headers)
    if server.server_description:
        tool["server_description"] = server.server_description
    return tool


def approval_decision(
    servers: Mapping[str, McpServer], request: RealtimeMcpApprovalRequest
) -> tuple[bool, str]:
    """Whether to approve ``request``, given the call's servers by label, and why.

    Only a tool listed in ``auto_approve`` of a configured server is approved. The reason of
    a denial is sent to the model, so it says what the model can tell the caller.
    """
    server = servers.get(request.server_label)
    label, tool = quoted(request.server_label), quoted(request.name)
    if server is None:
        return False, f"the MCP server {label} is not available on this call"
    if server.allowed_tools is not None and request.name not in server.allowed_tools:
        return False, f"the tool {tool} of {label} is not allowed on this call"
    if request.name in server.auto_approve:
        return True, f"the tool {tool} of {label} is approved for this call by policy"
    return False, (
        f"the tool {tool} of {label} needs approval, and no one can approve it during a call; "
        "offer the caller another way, or a transfer to a person"
    )


def approval_response_item(
    request_id: str, approve: bool, reason: str
) -> RealtimeMcpApprovalResponseParam:
    """The ``mcp_approval_response`` item that answers the approval request ``request_id``.

    Its item id is derived from ``request_id``, so answering the same request twice sends
    the same id (and the server refuses the duplicate).
    """
    digest = hashlib.sha256(request_id.encode()).hexdigest()
    prefix = "mcpresp_"
    return {
        "type": "mcp_approval_response",
        "id": prefix + digest[: _ITEM_ID_LENGTH - len(prefix)],
        "approval_request_id": request_id,
        "approve": approve,
        "reason": reason,
    }


def _is_env(value: str) -> bool:
    return value.startswith(ENV_PREFIX)
