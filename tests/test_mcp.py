"""MCP servers of a route: the session tool they become, header secrets, and the approval policy."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

import pydantic
import pytest
from openai.types.realtime import ConversationItem, RealtimeMcpApprovalRequest
from openai.types.realtime.realtime_tools_config_union import RealtimeToolsConfigUnion

from callcenter.call.mcp import (
    McpServer,
    approval_decision,
    approval_response_item,
    mcp_session_tool,
    resolve_headers,
)

SESSION_TOOL = pydantic.TypeAdapter(RealtimeToolsConfigUnion)
ITEM = pydantic.TypeAdapter(ConversationItem)

CRM = McpServer(
    server_label="crm",
    server_url="https://crm.example.com/mcp",
    allowed_tools=("lookup_customer", "create_ticket"),
    auto_approve=("lookup_customer",),
    headers=MappingProxyType({"X-Api-Key": "env:CRM_KEY"}),
)
SEARCH = McpServer("search", "https://search.example.com/mcp", auto_approve=("search",))
SERVERS = {"crm": CRM, "search": SEARCH}


def request(server_label: str, name: str) -> RealtimeMcpApprovalRequest:
    """An approval request as the sideband delivers it."""
    return RealtimeMcpApprovalRequest(
        id="mcpr_123",
        arguments='{"customer": "42"}',
        name=name,
        server_label=server_label,
        type="mcp_approval_request",
    )


def test_session_tool_leaves_every_decision_to_the_policy() -> None:
    """The mcp tool asks approval for every call, lists allowed tools and resolved headers."""
    tool = mcp_session_tool(resolve_headers(CRM, {"CRM_KEY": "s3cret"}))
    assert tool == {
        "type": "mcp",
        "server_label": "crm",
        "server_url": "https://crm.example.com/mcp",
        "require_approval": "always",
        "allowed_tools": ["lookup_customer", "create_ticket"],
        "headers": {"X-Api-Key": "s3cret"},
    }
    parsed = SESSION_TOOL.validate_python(tool)
    assert parsed.type == "mcp"


def test_session_tool_without_allowed_tools_lists_none() -> None:
    """A server with no allowed_tools shows every tool it lists (the policy still decides)."""
    tool = mcp_session_tool(SEARCH)
    assert "allowed_tools" not in tool
    assert "headers" not in tool
    SESSION_TOOL.validate_python(tool)


def test_session_tool_refuses_unresolved_headers() -> None:
    """A header still reading env:NAME is never sent to the server."""
    with pytest.raises(ValueError, match='header "X-Api-Key" of MCP server "crm"'):
        mcp_session_tool(CRM)


def test_resolve_headers_reads_the_given_environment() -> None:
    """env:NAME values come from the mapping; other values stay as written."""
    server = McpServer(
        "crm",
        "https://crm.example.com/mcp",
        headers={"X-Api-Key": "env:CRM_KEY", "X-Tenant": "acme"},
    )
    resolved = resolve_headers(server, {"CRM_KEY": "s3cret"})
    assert dict(resolved.headers) == {"X-Api-Key": "s3cret", "X-Tenant": "acme"}
    assert dict(server.headers)["X-Api-Key"] == "env:CRM_KEY"


@pytest.mark.parametrize("environ", [{}, {"CRM_KEY": ""}])
def test_resolve_headers_refuses_a_missing_variable(environ: dict[str, str]) -> None:
    """An unset or empty variable is an error naming the header and the variable."""
    with pytest.raises(ValueError, match="environment variable CRM_KEY, which is not set"):
        resolve_headers(CRM, environ)


def test_repr_hides_header_values() -> None:
    """Header values are secrets: repr shows only their names."""
    text = repr(resolve_headers(CRM, {"CRM_KEY": "s3cret"}))
    assert "s3cret" not in text
    assert "X-Api-Key=***" in text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"server_label": "a b"}, 'server_label "a b" must be'),
        ({"server_url": "ftp://crm"}, "must be an http(s):// URL"),
        ({"allowed_tools": ()}, "an empty list allows nothing"),
        ({"auto_approve": ("delete_customer",)}, 'auto_approve: "delete_customer" is not in'),
    ],
)
def test_inconsistent_server_is_refused(fields: dict[str, Any], message: str) -> None:
    """A server the policy could not apply cannot be built."""
    values: dict[str, Any] = {
        "server_label": "crm",
        "server_url": "https://crm.example.com/mcp",
        "allowed_tools": ("lookup_customer",),
        **fields,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        McpServer(**values)


@pytest.mark.parametrize(
    ("server_label", "name", "approve", "reason"),
    [
        ("crm", "lookup_customer", True, 'the tool "lookup_customer" of "crm" is approved'),
        ("search", "search", True, 'the tool "search" of "search" is approved'),
        ("crm", "create_ticket", False, 'the tool "create_ticket" of "crm" needs approval'),
        ("search", "delete_index", False, 'the tool "delete_index" of "search" needs approval'),
        ("crm", "drop_tables", False, 'the tool "drop_tables" of "crm" is not allowed'),
        ("other", "lookup_customer", False, 'the MCP server "other" is not available'),
    ],
)
def test_approval_decision(server_label: str, name: str, approve: bool, reason: str) -> None:
    """Only auto_approve tools of a configured server are approved; the rest are denied."""
    decision, why = approval_decision(SERVERS, request(server_label, name))
    assert decision is approve
    assert why.startswith(reason)


def test_approval_response_item_is_a_valid_item() -> None:
    """The answer is an mcp_approval_response item the SDK's models accept."""
    item = approval_response_item("mcpr_123", False, "needs approval")
    parsed = ITEM.validate_python(item)
    assert parsed.type == "mcp_approval_response"
    assert (item["approval_request_id"], item["approve"], item["reason"]) == (
        "mcpr_123",
        False,
        "needs approval",
    )


def test_approval_response_item_id_is_stable_and_short() -> None:
    """The item id is derived from the request (same request, same id) and fits 32 chars."""
    first = approval_response_item("mcpr_" + "x" * 60, True, "ok")
    again = approval_response_item("mcpr_" + "x" * 60, True, "ok")
    other = approval_response_item("mcpr_other", True, "ok")
    assert first["id"] == again["id"]
    assert first["id"] != other["id"]
    assert len(first["id"]) <= 32
