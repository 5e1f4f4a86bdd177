"""Company tools: ``@callcenter.tool`` functions, their schemas, the registry and the built-ins.

A tool is a plain module-level function, sync or async, marked with :func:`tool`::

    @callcenter.tool(timeout=5)
    def lookup_order(order_id: str, include_items: bool = False) -> dict[str, object]:
        '''Find an order by its number and tell its status.

        Args:
            order_id: The order number the caller reads out, like "A-1234".
            include_items: Whether to list the items too.
        '''

Its JSON Schema comes from the signature (see :mod:`callcenter.tools.schema` for the
supported annotations) and its docstring: the first paragraph describes the tool, an
``Args:`` section (or reST ``:param x:``, or NumPy ``Parameters``) each parameter. A
parameter with a default is optional. There is no global registry: :func:`load_tools`
imports the config's ``tool_modules`` and collects the marked functions, and schemas are
built then, once each module has been imported whole (so annotations may name classes
defined further down). Running a tool is :func:`run_tool`, in :mod:`callcenter.tools.run`.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from callcenter.config.reader import quoted
from callcenter.errors import ConfigError
from callcenter.tools.docstring import parse_docstring
from callcenter.tools.run import ToolResult, run_tool
from callcenter.tools.schema import (
    Arguments,
    ChoiceKind,
    Field,
    ObjectKind,
    ScalarKind,
    function_arguments,
    parse_json_arguments,
)

if TYPE_CHECKING:  # the openai types package is slow to import; `import callcenter` stays fast
    from openai.types.realtime import RealtimeFunctionToolParam

__all__ = [
    "BUILTIN_TOOLS",
    "END_CALL",
    "TRANSFER_TO_HUMAN",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "load_tools",
    "parse_arguments",
    "run_tool",
    "tool",
    "tool_spec",
    "transfer_tool_for",
]

F = TypeVar("F", bound=Callable[..., Any])

TRANSFER_TO_HUMAN = "transfer_to_human"
END_CALL = "end_call"
_MARK = "__callcenter_tool__"
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class ToolMark:
    """What ``@tool(...)`` was given; the spec is built from it by :func:`tool_spec`."""

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


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it (name, description, parameters) and how to run it.

    ``function`` is None for the built-ins, which the call session carries out itself;
    ``timeout`` None means the registry's default. ``arguments`` checks and converts the
    model's arguments (see :func:`parse_arguments`).
    """

    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)  # JSON Schema of an object
    function: Callable[..., Any] | None
    is_async: bool
    timeout: float | None
    builtin: bool = False
    arguments: Arguments | None = field(default=None, compare=False, repr=False)

    def as_session_tool(self) -> RealtimeFunctionToolParam:
        """The function tool to declare in the session (accept) config."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


def tool_spec(function: Callable[..., Any]) -> ToolSpec:
    """The spec of a function marked with :func:`tool`.

    Raises TypeError when the function is not marked, or its name, description, timeout or
    a parameter cannot make a tool (the message says which and why).
    """
    where = _qualname(function)
    mark = getattr(function, _MARK, None)
    if not isinstance(mark, ToolMark):
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
    description = mark.description or parse_docstring(function.__doc__).summary
    if not description:
        raise TypeError(f"{where}: no description; write a docstring that tells the model")
    try:
        arguments = function_arguments(function)
    except TypeError as error:
        raise TypeError(f"{where}: {error}") from None
    return ToolSpec(
        name=name,
        description=description,
        parameters=arguments.schema(),
        function=function,
        is_async=inspect.iscoroutinefunction(function),
        timeout=mark.timeout,
        arguments=arguments,
    )


def parse_arguments(spec: ToolSpec, arguments: str) -> dict[str, Any]:
    """Check the model's JSON ``arguments`` against ``spec``; the keyword arguments to call with.

    Raises ValueError with a message the model can act on, e.g. ``'order_id' is required``.
    Enum parameters arrive as members, dataclasses as instances, ``tuple[T, ...]`` as tuples;
    optional parameters the model left out are absent, so their defaults apply. A spec made
    by hand, without ``arguments``, only checks that they are a JSON object.
    """
    return parse_json_arguments(spec.arguments, arguments)


# -- built-ins ---------------------------------------------------------------------------------

_REASON_FOR_TRANSFER = (
    "Why the caller needs a person, in one sentence, for the person who takes over."
)
_TARGET = "Which team to transfer to. Leave it out for the usual team."
_TRANSFER = (
    "Hand the call to a human agent. Call this when the caller asks for a person, when you "
    "cannot resolve their request with your tools, or when the caller is upset or the matter "
    "is sensitive. The caller is told they are being transferred; say nothing more."
)


def transfer_tool_for(targets: Sequence[str]) -> ToolSpec:
    """``transfer_to_human`` whose ``target`` may only name ``targets`` (none: no ``target``)."""
    fields = [Field("reason", ScalarKind("string"), True, _REASON_FOR_TRANSFER)]
    if targets:
        choices = ChoiceKind(tuple((target, target) for target in dict.fromkeys(targets)))
        fields.append(Field("target", choices, False, _TARGET))
    return _builtin(TRANSFER_TO_HUMAN, _TRANSFER, ObjectKind(tuple(fields)))


def _builtin(name: str, description: str, arguments: Arguments) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        parameters=arguments.schema(),
        function=None,
        is_async=False,
        timeout=None,
        builtin=True,
        arguments=arguments,
    )


BUILTIN_TOOLS: Mapping[str, ToolSpec] = MappingProxyType(
    {
        TRANSFER_TO_HUMAN: _builtin(
            TRANSFER_TO_HUMAN,
            _TRANSFER,
            ObjectKind(
                (
                    Field("reason", ScalarKind("string"), True, _REASON_FOR_TRANSFER),
                    Field("target", ScalarKind("string"), False, _TARGET),
                )
            ),
        ),
        END_CALL: _builtin(
            END_CALL,
            "End the phone call. Call this only when the conversation is over: the caller has "
            "said goodbye or confirmed they need nothing else, or the call is plainly not meant "
            "for this line. The caller hears a short goodbye, then the line closes.",
            ObjectKind(
                (Field("reason", ScalarKind("string"), True, "Why the call ends, in a few words."),)
            ),
        ),
    }
)
"""The tools every route may list; the call session carries them out, not a function.

``transfer_to_human`` here takes any ``target`` string; declare it to the model through
:func:`transfer_tool_for` (or :meth:`ToolRegistry.session_tools`) so that only the route's
targets can be named.
"""


# -- the registry ------------------------------------------------------------------------------


class ToolRegistry:
    """The company's tools and the built-ins, by name."""

    def __init__(self, specs: Iterable[ToolSpec], default_timeout: float = 10.0) -> None:
        if not 0 < default_timeout < math.inf:
            raise ValueError("default_timeout must be a positive number of seconds")
        self.default_timeout = default_timeout
        self._specs: dict[str, ToolSpec] = dict(BUILTIN_TOOLS)
        for spec in specs:
            if spec.name in BUILTIN_TOOLS:
                raise ValueError(f"tool {quoted(spec.name)} has the name of a built-in tool")
            if spec.name in self._specs:
                raise ValueError(f"two tools are named {quoted(spec.name)}")
            self._specs[spec.name] = spec

    def get(self, name: str) -> ToolSpec | None:
        """The tool called ``name``, None if there is none."""
        return self._specs.get(name)

    def names(self) -> frozenset[str]:
        """Every name a route may list: the company's tools and the built-ins."""
        return frozenset(self._specs)

    def timeout_for(self, spec: ToolSpec) -> float:
        """How long ``spec`` may run, in seconds: its own timeout or the default."""
        return self.default_timeout if spec.timeout is None else spec.timeout

    def session_tools(
        self, names: Sequence[str], transfer_targets: Sequence[str]
    ) -> list[RealtimeFunctionToolParam]:
        """The function tools of a route's tool list, for its accept config.

        ``transfer_to_human`` may name only ``transfer_targets``. Raises KeyError for a name
        no tool has (config validation should have caught it).
        """
        tools: list[RealtimeFunctionToolParam] = []
        for name in names:
            spec = transfer_tool_for(transfer_targets) if name == TRANSFER_TO_HUMAN else None
            spec = spec or self._specs.get(name)
            if spec is None:
                raise KeyError(f"no tool named {quoted(name)}")
            tools.append(spec.as_session_tool())
        return tools


def load_tools(
    module_names: Sequence[str], *, default_timeout: float = 10.0, file: str = "<config>"
) -> ToolRegistry:
    """Import each of ``module_names`` and collect its ``@tool`` functions into a registry.

    Every problem raises ConfigError for the key ``tool_modules[i]`` of ``file``: a module not
    found or failing to import, a module without tools, a tool that cannot be described
    (unsupported or missing annotation, no docstring, bad name), or a name used twice or
    taken by a built-in.
    """
    specs: dict[str, tuple[ToolSpec, int]] = {}
    for index, module_name in enumerate(module_names):

        def error(reason: str, index: int = index) -> ConfigError:
            return ConfigError(file, f"tool_modules[{index}]", reason)

        functions = _marked_functions(_import(module_name, error))
        if not functions:
            raise error(f"module {quoted(module_name)} has no @callcenter.tool function")
        for function in functions:
            try:
                spec = tool_spec(function)
            except TypeError as problem:
                raise error(str(problem)) from None
            if spec.name in BUILTIN_TOOLS:
                raise error(
                    f"tool {quoted(spec.name)} ({_qualname(function)}) has the name of a built-in "
                    "tool; rename it with @callcenter.tool(name=...)"
                )
            if spec.name in specs:
                first, first_index = specs[spec.name]
                if first.function is function:
                    continue  # the same function, re-exported by another listed module
                raise error(
                    f"tool {quoted(spec.name)} is defined twice: {_qualname(function)} and "
                    f"{_qualname(first.function)} (tool_modules[{first_index}])"
                )
            specs[spec.name] = (spec, index)
    return ToolRegistry((spec for spec, _ in specs.values()), default_timeout)


def _import(module_name: str, error: Callable[[str], ConfigError]) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as problem:
        missing = problem.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise error(f"no module named {quoted(module_name)} (is it on sys.path?)") from None
        raise error(f"importing {quoted(module_name)} failed: {problem}") from problem
    except Exception as problem:  # whatever the company's module raises at import
        reason = f"{type(problem).__name__}: {problem}"
        raise error(f"importing {quoted(module_name)} failed: {reason}") from problem


def _marked_functions(module: object) -> list[Callable[..., Any]]:
    found: dict[Callable[..., Any], None] = {}
    for value in vars(module).values():
        if inspect.isfunction(value) and isinstance(getattr(value, _MARK, None), ToolMark):
            found[value] = None
    return list(found)


def _qualname(function: object) -> str:
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{name}" if module else name
