"""``@callcenter.tool``: mark a plain function as a tool, and nothing more.

A tool is a plain module-level function, sync or async, marked with :func:`tool`::

    @callcenter.tool(timeout=5)
    def lookup_order(order_id: str, include_items: bool = False) -> dict[str, object]:
        '''Find an order by its number and tell its status.

        Args:
            order_id: The order number the caller reads out, like "A-1234".
            include_items: Whether to list the items too.
        '''

Marking registers nothing: :func:`callcenter.tools.registry.load_tools` finds the marked
functions of the config's ``tool_modules`` and builds their specs then
(:func:`callcenter.tools.spec.tool_spec`). This module imports neither pydantic nor asyncio,
so that ``import callcenter`` stays fast.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

__all__ = ["ToolMark", "mark_of", "tool"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__callcenter_tool__"


@dataclass(frozen=True, slots=True)
class ToolMark:
    """What ``@tool(...)`` was given; the spec is built from it by ``tool_spec``."""

    name: str | None = None
    description: str | None = None
    timeout: float | None = None


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> F | Callable[[F], F]:
    """Mark a plain sync or async function as a tool: ``@tool`` or ``@tool(timeout=3)``.

    ``name`` defaults to the function's name, ``description`` to its docstring's first
    paragraph, ``timeout`` (seconds) to the registry's default. The function is returned
    unchanged, only marked; nothing is registered anywhere.
    """
    mark = ToolMark(name, description, timeout)

    def decorate(function: F) -> F:
        if not inspect.isfunction(function):
            raise TypeError(f"@tool marks functions, not {type(function).__name__} objects")
        setattr(function, _MARK, mark)
        return function

    return decorate if fn is None else decorate(fn)


def mark_of(value: object) -> ToolMark | None:
    """The mark ``@tool`` left on ``value``; None when it is not a marked function."""
    mark = getattr(value, _MARK, None) if inspect.isfunction(value) else None
    return mark if isinstance(mark, ToolMark) else None
