"""The TOML configuration: loaded and validated once at start-up into frozen values.

Any problem raises :class:`~callcenter.errors.ConfigError` reading
``file:LINE: key.path: reason``, e.g.
``callcenter.toml:31: routes[2].escalation.target: no target named "desk"``.
The shape is documented by the example config shipped with the package
(:func:`example_config_path`).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from openai.types.realtime import CallAcceptParams
from openai.types.realtime.realtime_tools_config_param import RealtimeToolsConfigUnionParam as Tool

from callcenter.call.mcp import mcp_session_tool, resolve_headers
from callcenter.config.build import VOICES, build_config
from callcenter.config.model import (
    AcceptAction,
    Config,
    DtmfAction,
    Escalation,
    HeaderPattern,
    Hours,
    Limits,
    Match,
    OpenAISettings,
    OpenWindow,
    Operators,
    ReferAction,
    RejectAction,
    Route,
    RouteAction,
    Screening,
    Target,
)
from callcenter.config.reader import load_toml, parse_toml
from callcenter.config.session import merge_session, turn_detection_type
from callcenter.errors import ConfigError
from callcenter.notify.config import resolve_secrets
from callcenter.tools.registry import ToolRegistry

__all__ = [
    "VOICES",
    "AcceptAction",
    "RouteAction",
    "Config",
    "ConfigError",
    "DtmfAction",
    "Escalation",
    "HeaderPattern",
    "Hours",
    "Limits",
    "Match",
    "OpenAISettings",
    "OpenWindow",
    "Operators",
    "ReferAction",
    "RejectAction",
    "Route",
    "Screening",
    "Target",
    "check_route_tools",
    "example_config_path",
    "load_config",
    "parse_config",
    "resolve_mcp_headers",
    "resolve_notify_secrets",
    "session_config",
    "silence_timer_seconds",
    "transfer_session_config",
    "transfer_targets",
]


def load_config(path: str | os.PathLike[str], *, today: date | None = None) -> Config:
    """Read and validate the config file at ``path`` (model shutdowns judged on ``today``)."""
    return build_config(load_toml(path), today)


def parse_config(text: str, file: str = "<config>", *, today: date | None = None) -> Config:
    """Validate the TOML document ``text``; ``file`` names it in errors."""
    return build_config(parse_toml(text, file), today)


def example_config_path() -> Path:
    """The example config shipped inside the package (a copy is in ``examples/``)."""
    return Path(__file__).resolve().parent / "example.toml"


def check_route_tools(config: Config, tools: ToolRegistry) -> None:
    """Raise ConfigError naming ``routes[i].tools[j]`` for a tool name no tool has."""
    known = tools.names()
    for i, route in enumerate(config.routes):
        for j, name in enumerate(route.tools):
            if name not in known:
                listed = ", ".join(sorted(known))
                raise ConfigError(
                    config.path,
                    f"routes[{i}].tools[{j}]",
                    f'no tool named "{name}"; known: {listed}',
                )


def resolve_mcp_headers(config: Config, environ: Mapping[str, str]) -> Config:
    """``config`` with every ``env:NAME`` MCP header read from ``environ``.

    Raises ConfigError naming ``routes[i].mcp[j].headers`` when a variable is not set.
    """
    routes: list[Route] = []
    for i, route in enumerate(config.routes):
        servers = []
        for j, server in enumerate(route.mcp):
            try:
                servers.append(resolve_headers(server, environ))
            except ValueError as error:
                raise ConfigError(
                    config.path, f"routes[{i}].mcp[{j}].headers", str(error)
                ) from None
        routes.append(dataclasses.replace(route, mcp=tuple(servers)))
    return dataclasses.replace(config, routes=tuple(routes))


def resolve_notify_secrets(config: Config, environ: Mapping[str, str]) -> Config:
    """``config`` with every ``[[notify]]`` secret read from its ``env:`` variable.

    Raises ConfigError with the file, line and ``notify[i].secret`` when one is unset.
    """
    return dataclasses.replace(config, notify=resolve_secrets(config.path, config.notify, environ))


def session_config(
    route: Route, config: Config, tools: ToolRegistry | None = None
) -> CallAcceptParams:
    """The body that accepts a call for ``route``: model, instructions, voice, transcription,
    and the route's tools, with ``[openai].session`` then the route's ``session`` merged over
    it (:func:`~callcenter.config.session.merge_session`: their values win, lists join).
    A route that escalates on silences gets server VAD's ``idle_timeout_ms`` (8 s unless set).

    Input transcription is always on, so both sides of the call can be transcribed. The
    route's function tools come from ``tools`` (the built-ins only when None), with
    ``transfer_to_human`` limited to the configured target names; its MCP servers follow,
    each asking for approval of every call (the session answers by policy).
    """
    params: CallAcceptParams = {
        "type": "realtime",
        "model": route.model or config.openai.model,
        "audio": {
            "input": {"transcription": {"model": config.openai.transcription_model}},
            "output": {"voice": route.voice or config.openai.voice},
        },
    }
    if route.instructions is not None:
        params["instructions"] = route.instructions
    declared: list[Tool] = list(
        (tools or ToolRegistry(())).session_tools(route.tools, transfer_targets(route, config))
    )
    declared.extend(mcp_session_tool(server) for server in route.mcp)
    if declared:
        params["tools"] = declared
        params["tool_choice"] = "auto"
    body = merge_session(dict(params), config.openai.session, route.session)
    if route.escalation is not None:
        _set_idle_timeout(body)
    return typing.cast(CallAcceptParams, body)


DEFAULT_IDLE_TIMEOUT_MS = 8000


def silence_timer_seconds(route: Route | None, config: Config) -> float | None:
    """Seconds of silence the call times itself, or None when the API reports silences.

    Only a route that escalates on silences under semantic VAD needs it: semantic VAD has
    no ``idle_timeout_ms``, so nothing would ever report the caller silent.
    """
    if route is None or route.escalation is None:
        return None
    if turn_detection_type(config.openai.session, route.session) != "semantic_vad":
        return None
    return DEFAULT_IDLE_TIMEOUT_MS / 1000


def _set_idle_timeout(body: dict[str, Any]) -> None:
    """Make server VAD report silences (``input_audio_buffer.timeout_triggered``): the API
    sends them only when ``idle_timeout_ms`` is set. Semantic VAD has no idle timeout; the
    call keeps its own silence timer there (``call/timers.py``)."""
    audio_input = body.setdefault("audio", {}).setdefault("input", {})
    vad = audio_input.get("turn_detection")
    if vad is None:
        audio_input["turn_detection"] = {
            "type": "server_vad",
            "idle_timeout_ms": DEFAULT_IDLE_TIMEOUT_MS,
        }
    elif vad.get("type", "server_vad") == "server_vad":
        vad.setdefault("idle_timeout_ms", DEFAULT_IDLE_TIMEOUT_MS)


def transfer_targets(route: Route, config: Config) -> list[str]:
    """The target names ``transfer_to_human`` may name: the route's own target first."""
    own = [route.escalation.target] if route.escalation else []
    return list(dict.fromkeys([*own, *config.targets]))


TRANSFER_INSTRUCTIONS = (
    "You are transferring this phone call to a person. Say only what you are asked to say, "
    "then stay silent."
)


def transfer_session_config(route: Route | None, config: Config) -> CallAcceptParams:
    """The body that accepts a call only to transfer it (a REFER needs an established call).

    The model says the handoff line, if the route has one, and nothing else.
    """
    return {
        "type": "realtime",
        "model": (route.model if route else None) or config.openai.model,
        "instructions": TRANSFER_INSTRUCTIONS,
        "audio": {"output": {"voice": (route.voice if route else None) or config.openai.voice}},
    }
