"""The ``session`` tables of ``[openai]`` and each route: any Realtime session setting.

A table is checked against the SDK's own accept type (``RealtimeSessionCreateRequestParam``
and every type it references, through :mod:`callcenter.sdk_types`), so a field a newer SDK
adds works without code, and a mistake is a config error with the file, line and key path:
``callcenter.toml:41: routes[0].session.reasoning.effort: "extreme" is not one of minimal,
low, medium, high, xhigh``. The checked tables are deep-merged over the accept body
callcenter builds (:func:`merge_session`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from openai.types.realtime.realtime_session_create_request_param import (
    RealtimeSessionCreateRequestParam,
)

from callcenter.config.reader import Section, format_path, quoted, type_name
from callcenter.sdk_types import first_problem, unknown_key

__all__ = ["merge_session", "session_table"]

logger = logging.getLogger(__name__)

_NEGOTIATED = (("audio", "input", "format"), ("audio", "output", "format"))
_QUOTED_RE = re.compile(r"'([^']*)'")


def session_table(section: Section, key: str = "session") -> Mapping[str, Any]:
    """The checked ``session`` table of ``section`` (empty when absent)."""
    table = section.table(key)
    if table is None:
        return MappingProxyType({})
    data = dict(table.data)
    body = {"type": "realtime", **data}
    stray = unknown_key(body, RealtimeSessionCreateRequestParam)
    if stray is not None:
        raise table.context.error((*table.path, *stray), "not a Realtime session setting")
    problem = first_problem(body, RealtimeSessionCreateRequestParam)
    if problem is not None:
        path = (*table.path, *problem.path)
        if problem.kind == "missing":
            path = (*path, problem.error["loc"][-1])
            raise table.context.error(path, "required")
        raise table.context.error(path, _reason(problem.error["type"], problem.error))
    for negotiated in _NEGOTIATED:
        if _has(data, negotiated):
            logger.warning(
                "a SIP call's audio format is negotiated with the trunk; leave it unset",
                extra={"key": format_path((*table.path, *negotiated))},
            )
    return MappingProxyType(data)


def merge_session(base: Mapping[str, Any], *overs: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with each of ``overs`` deep-merged over it in turn.

    Tables merge key by key; lists are joined (``base``'s items first, so callcenter's own
    tools stay and a table's tools are added); any other value from a table wins.
    """
    merged = dict(base)
    for over in overs:
        for key, value in over.items():
            old = merged.get(key)
            if isinstance(old, Mapping) and isinstance(value, Mapping):
                merged[key] = merge_session(old, value)
            elif isinstance(old, list) and isinstance(value, list):
                merged[key] = [*old, *value]
            else:
                merged[key] = _plain(value)
    return merged


def _plain(value: object) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _reason(kind: str, error: Any) -> str:
    value = error.get("input")
    shown = quoted(value) if isinstance(value, str) else repr(value)
    if kind == "literal_error":
        expected = _QUOTED_RE.findall(str(error.get("ctx", {}).get("expected", "")))
        return f"{shown} is not one of {', '.join(expected)}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = str(error.get("msg", "")).removeprefix("Input should be ")
        return f"expected {message}, got {type_name(value)}"
    message = str(error.get("msg", "invalid value"))
    return message[:1].lower() + message[1:]


def _has(data: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    current: Any = data
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return False
        current = current[key]
    return True


def turn_detection_type(*tables: Mapping[str, Any]) -> str:
    """The turn detection the merged ``tables`` ask for (server_vad, the API's default)."""
    found = "server_vad"
    for table in tables:
        vad = table.get("audio", {}).get("input", {}).get("turn_detection")
        if isinstance(vad, Mapping):
            found = str(vad.get("type", found))
    return found
