"""The TOML configuration: loaded and validated once at start-up into frozen values.

Any problem raises :class:`~callcenter.errors.ConfigError` reading
``file:LINE: key.path: reason``, e.g.
``callcenter.toml:31: routes[2].escalation.target: no target named "desk"``.
The shape is documented by the example config shipped with the package
(:func:`example_config_path`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from openai.types.realtime import CallAcceptParams

from callcenter._config_build import VOICES, build_config
from callcenter._config_lines import syntax_error_line
from callcenter._config_model import (
    AcceptAction,
    Action,
    Config,
    Escalation,
    HeaderPattern,
    Hours,
    Limits,
    Match,
    OpenAISettings,
    OpenWindow,
    ReferAction,
    RejectAction,
    Route,
    Screening,
    Target,
)
from callcenter.errors import ConfigError

__all__ = [
    "VOICES",
    "AcceptAction",
    "Action",
    "Config",
    "ConfigError",
    "Escalation",
    "HeaderPattern",
    "Hours",
    "Limits",
    "Match",
    "OpenAISettings",
    "OpenWindow",
    "ReferAction",
    "RejectAction",
    "Route",
    "Screening",
    "Target",
    "example_config_path",
    "load_config",
    "parse_config",
    "session_config",
    "transfer_session_config",
]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config file at ``path``."""
    file = os.fspath(path)
    try:
        raw = Path(file).read_bytes()
    except OSError as error:
        raise ConfigError(file, "", f"cannot read the file: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(file, "", "the file is not UTF-8 text") from None
    return parse_config(text, file)


def parse_config(text: str, file: str = "<config>") -> Config:
    """Validate the TOML document ``text``; ``file`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reason, line = syntax_error_line(error, text)
        raise ConfigError(file, "", f"TOML syntax error: {reason}", line) from None
    return build_config(data, file, text)


def example_config_path() -> Path:
    """The example config shipped inside the package (a copy is in ``examples/``)."""
    return Path(__file__).resolve().parent / "example.toml"


def session_config(route: Route, config: Config) -> CallAcceptParams:
    """The body that accepts a call for ``route``: model, instructions, voice, transcription.

    Input transcription is always on, so both sides of the call can be transcribed. The body
    carries no tools.
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
    return params


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
