"""A tool as the model sees it and as the call runs it: :class:`ToolSpec`, built from a
function marked with ``@callcenter.tool`` by :func:`tool_spec`.

The description is the mark's, or the docstring's first paragraph; the parameters come from
the signature through :class:`callcenter.tools.schema.Arguments` (see there for the types a
parameter may have and where descriptions come from). A parameter with a default is
optional. Specs are built once each module has been imported whole, so annotations may name
classes defined further down.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_type_hints

from callcenter.config.reader import quoted
from callcenter.tools.decorator import mark_of
from callcenter.tools.schema import REQUIRED, Arguments, Parameter, parse_docstring

if TYPE_CHECKING:  # the openai types package is slow to import
    from openai.types.realtime import RealtimeFunctionToolParam

__all__ = ["ToolSpec", "parse_arguments", "qualname", "tool_spec"]

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it (name, description, parameters) and how to run it.

    ``function`` is None for the built-ins, which the call session carries out itself;
    ``timeout`` None means the registry's default. ``arguments`` gives the parameters'
    JSON Schema and checks the model's arguments (see :func:`parse_arguments`).
    """

    name: str
    description: str
    arguments: Arguments = field(compare=False, repr=False)
    function: Callable[..., Any] | None
    is_async: bool
    timeout: float | None
    builtin: bool = False

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON Schema (an object) of the tool's arguments."""
        return self.arguments.schema

    def as_session_tool(self) -> RealtimeFunctionToolParam:
        """The function tool to declare in the session (accept) config."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


def tool_spec(function: Callable[..., Any]) -> ToolSpec:
    """The spec of a function marked with ``@callcenter.tool``.

    Raises TypeError when the function is not marked, or its name, description, timeout or
    a parameter cannot make a tool (the message says which and why).
    """
    where = qualname(function)
    mark = mark_of(function)
    if mark is None:
        raise TypeError(f"{where} is not marked with @callcenter.tool")
    name = mark.name or function.__name__
    if not _NAME_RE.fullmatch(name):
        raise TypeError(f"{where}: tool name {quoted(name)} must be 1-64 letters, digits, _ or -")
    timeout = mark.timeout
    if timeout is not None and not (
        isinstance(timeout, int | float)
        and not isinstance(timeout, bool)
        and 0 < timeout < math.inf
    ):
        raise TypeError(f"{where}: timeout must be a positive number of seconds")
    if inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        raise TypeError(f"{where}: a generator cannot be a tool; return the result instead")
    docs = parse_docstring(function.__doc__)
    description = mark.description or docs.summary
    if not description:
        raise TypeError(f"{where}: no description; write a docstring that tells the model")
    try:
        arguments = Arguments(_parameters(function, docs.params))
    except TypeError as error:
        raise TypeError(f"{where}: {error}") from None
    return ToolSpec(
        name=name,
        description=description,
        arguments=arguments,
        function=function,
        is_async=inspect.iscoroutinefunction(function),
        timeout=timeout,
    )


def _parameters(function: Callable[..., Any], described: dict[str, str]) -> list[Parameter]:
    """The parameters of ``function``; TypeError for one a tool cannot take."""
    try:
        hints = get_type_hints(function, include_extras=True)
    except Exception as error:  # any error evaluating an annotation string
        raise TypeError(f"cannot resolve its annotations: {error}") from error
    parameters: list[Parameter] = []
    for parameter in inspect.signature(function).parameters.values():
        where = f"parameter {quoted(parameter.name)}"
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{where}: *args and **kwargs cannot be tool parameters")
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise TypeError(f"{where}: positional-only parameters are not supported")
        if parameter.name not in hints:
            raise TypeError(f"{where} has no type annotation")
        default = parameter.default
        parameters.append(
            Parameter(
                parameter.name,
                hints[parameter.name],
                REQUIRED if default is parameter.empty else default,
                described.get(parameter.name),
            )
        )
    return parameters


def parse_arguments(spec: ToolSpec, arguments: str) -> dict[str, Any]:
    """Check the model's JSON ``arguments`` against ``spec``; the keyword arguments to call with.

    Raises ValueError with a message the model can act on, e.g. ``'order_id': Field
    required``. Optional parameters the model left out are absent, so their defaults apply.
    """
    return spec.arguments.parse(arguments)


def qualname(function: object) -> str:
    """``module.qualname`` of ``function``, for messages."""
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{name}" if module else name
