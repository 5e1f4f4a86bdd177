"""Config for held calls: DTMF maps, MCP servers, tool settings, and the accept body's tools."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from callcenter.config.loader import (
    DtmfAction,
    check_route_tools,
    example_config_path,
    load_config,
    parse_config,
    resolve_mcp_headers,
    session_config,
)
from callcenter.errors import ConfigError
from callcenter.tools.registry import ToolRegistry, load_tools
from callcenter.web.app import sideband_connection_options

TARGETS = """
[[targets]]
name = "desk"
uri = "sip:desk@pbx.example.com"

[[targets]]
name = "sales"
uri = "tel:+14155550199"
"""
ROUTE = """
[[routes]]
name = "main"
instructions = "Help the caller."
"""


def route_with(lines: str) -> str:
    return TARGETS + ROUTE + lines


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "callcenter.toml")
    return str(caught.value)


def test_a_dtmf_map_parses_into_actions() -> None:
    """escalate, end and refer:<target> become DtmfActions; refer resolves the target URI."""
    config = parse_config(
        route_with('dtmf = { "0" = "escalate", "5" = "refer:sales", "9" = "end" }')
    )
    route = config.route("main")
    assert route.dtmf == {
        "0": DtmfAction("escalate"),
        "5": DtmfAction("refer", "sales", "tel:+14155550199"),
        "9": DtmfAction("end"),
    }
    assert route.dtmf_action("7") is None


def test_the_escalation_key_acts_like_a_dtmf_escalate() -> None:
    """escalation.dtmf is one more key that escalates."""
    config = parse_config(route_with('escalation = { target = "desk", dtmf = "#" }'))
    assert config.route("main").dtmf_action("#") == DtmfAction("escalate")


@pytest.mark.parametrize(
    ("dtmf", "message"),
    [
        ('{ "12" = "end" }', "routes[0].dtmf.12: expected one keypad key"),
        (
            '{ "1" = "call mom" }',
            'routes[0].dtmf.1: expected "escalate", "end" or "refer:<target>"',
        ),
        ('{ "1" = "refer:nobody" }', 'routes[0].dtmf.1: no target named "nobody"'),
        ('{ "1" = 3 }', 'routes[0].dtmf.1: expected "escalate", "end" or "refer:<target>"'),
    ],
)
def test_a_bad_dtmf_map_names_the_key(dtmf: str, message: str) -> None:
    """Each problem of a DTMF map names the key and the reason."""
    assert message in error_of(route_with(f"dtmf = {dtmf}"))


def test_a_dtmf_key_cannot_contradict_the_escalation_key() -> None:
    """The escalation key cannot also end the call."""
    text = route_with('escalation = { target = "desk", dtmf = "0" }\ndtmf = { "0" = "end" }')
    assert 'routes[0].dtmf.0: escalation.dtmf already makes "0" escalate' in error_of(text)


def test_mcp_servers_parse_and_resolve_their_headers() -> None:
    """[[routes.mcp]] becomes McpServer; env:NAME headers are read at start-up."""
    text = route_with(
        '[[routes.mcp]]\nserver_label = "crm"\nserver_url = "https://crm.example.com/mcp"\n'
        'allowed_tools = ["lookup"]\nauto_approve = ["lookup"]\n'
        'headers = { "X-Api-Key" = "env:CRM_KEY" }\n'
    )
    config = parse_config(text)
    (server,) = config.route("main").mcp
    assert (server.server_label, server.allowed_tools, server.auto_approve) == (
        "crm",
        ("lookup",),
        ("lookup",),
    )
    resolved = resolve_mcp_headers(config, {"CRM_KEY": "secret"})
    assert dict(resolved.route("main").mcp[0].headers) == {"X-Api-Key": "secret"}
    assert "secret" not in repr(resolved.route("main").mcp[0])
    with pytest.raises(ConfigError, match=r"routes\[0\]\.mcp\[0\]\.headers: .*CRM_KEY"):
        resolve_mcp_headers(config, {})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('server_label = "crm"\n', "routes[0].mcp[0].server_url: required"),
        (
            'server_label = "crm"\nserver_url = "ftp://x"\n',
            "must be an http(s):// URL",
        ),
        (
            'server_label = "crm"\nserver_url = "https://x"\nallowed_tools = ["a"]\n'
            'auto_approve = ["b"]\n',
            "is not in allowed_tools",
        ),
        ('server_label = "crm"\nserver_url = "https://x"\nport = 1\n', "routes[0].mcp[0].port"),
    ],
)
def test_a_bad_mcp_server_names_its_table(table: str, message: str) -> None:
    """Each problem of an MCP server names its table and the reason."""
    error = error_of(route_with("[[routes.mcp]]\n" + table))
    assert "routes[0].mcp[0]" in error
    assert message in error


def test_tool_settings_have_defaults_and_are_checked() -> None:
    """tool_timeout and slow_tool_notice default to 10 s and 2 s; they must be positive."""
    config = parse_config(TARGETS + ROUTE)
    assert (config.tool_timeout, config.slow_tool_notice) == (10.0, 2.0)
    config = parse_config("tool_timeout = 3\nslow_tool_notice = 0.5\n" + TARGETS + ROUTE)
    assert (config.tool_timeout, config.slow_tool_notice) == (3.0, 0.5)
    assert "tool_timeout: expected a positive number, got 0" in error_of(
        "tool_timeout = 0\n" + TARGETS + ROUTE
    )


def test_a_route_naming_an_unknown_tool_is_refused_at_start() -> None:
    """A tool name no module provides is a ConfigError naming routes[i].tools[j]."""
    config = parse_config(route_with('tools = ["end_call", "lookup_order"]'), "callcenter.toml")
    with pytest.raises(ConfigError, match=r'routes\[0\]\.tools\[1\]: no tool named "lookup_order"'):
        check_route_tools(config, ToolRegistry(()))


def test_the_accept_declares_the_route_tools_and_mcp_servers() -> None:
    """Function tools (transfer limited to our targets) and MCP servers, with tool_choice auto."""
    text = route_with(
        'tools = ["transfer_to_human", "end_call"]\n'
        'escalation = { target = "sales" }\n'
        '[[routes.mcp]]\nserver_label = "crm"\nserver_url = "https://crm.example.com/mcp"\n'
    )
    config = parse_config(text)
    body = session_config(config.route("main"), config)
    tools = list(body.get("tools", []))
    assert [tool.get("name", tool.get("server_label")) for tool in tools] == [
        "transfer_to_human",
        "end_call",
        "crm",
    ]
    transfer: dict[str, Any] = dict(tools[0])
    assert transfer["type"] == "function"
    assert transfer["parameters"]["properties"]["target"]["enum"] == ["sales", "desk"]
    assert tools[2] == {
        "type": "mcp",
        "server_label": "crm",
        "server_url": "https://crm.example.com/mcp",
        "require_approval": "always",
    }
    assert body.get("tool_choice") == "auto"


def test_the_example_config_uses_the_shipped_tools() -> None:
    """The example's tool module loads and provides every tool its routes list."""
    config = load_config(example_config_path())
    tools = load_tools(config.tool_modules, default_timeout=config.tool_timeout)
    check_route_tools(config, tools)
    assert "lookup_order" in config.route("support").tools
    lookup = tools.get("lookup_order")
    assert lookup is not None
    assert lookup.function is not None
    assert lookup.function("a-1042")["status"] == "shipped"


def test_the_sideband_proxy_is_looked_up_once_with_websockets_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wss to OpenAI goes through HTTPS_PROXY; a NO_PROXY host and no proxy connect directly."""
    for name in ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    openai_direct = openai.AsyncOpenAI(api_key="sk-test")
    assert sideband_connection_options(openai_direct) == {"proxy": "http://proxy.example:3128"}
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    monkeypatch.setenv("no_proxy", "api.openai.com")
    assert sideband_connection_options(openai_direct) == {"proxy": None}
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name)
    loopback = openai.AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    assert sideband_connection_options(loopback) == {"proxy": None}
