"""The company's tools and the built-ins, by name: :class:`ToolRegistry`, :func:`load_tools`.

There is no global registry: :func:`load_tools` imports the config's ``tool_modules`` and
collects the functions marked with ``@callcenter.tool`` (:mod:`callcenter.tools.decorator`),
building each one's spec (:mod:`callcenter.tools.spec`) once its module has been imported
whole. The built-ins ``transfer_to_human`` and ``end_call`` are carried out by the call
session, not by a function. Running a tool is :func:`callcenter.tools.run.run_tool`.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, cast

from callcenter.config.reader import quoted
from callcenter.errors import ConfigError
from callcenter.tools.decorator import mark_of
from callcenter.tools.schema import OPTIONAL, REQUIRED, Arguments, Parameter
from callcenter.tools.spec import ToolSpec, qualname, tool_spec

if TYPE_CHECKING:  # the openai types package is slow to import
    from openai.types.realtime import RealtimeFunctionToolParam

__all__ = [
    "BUILTIN_TOOLS",
    "END_CALL",
    "TRANSFER_TO_HUMAN",
    "ToolRegistry",
    "load_tools",
    "transfer_tool_for",
]

TRANSFER_TO_HUMAN = "transfer_to_human"
END_CALL = "end_call"


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
    """``transfer_to_human`` whose ``target`` may only name ``targets`` (none: no ``target``).

    Every accept asks for one, and building a pydantic model takes milliseconds, so the spec
    is built once per list of targets.
    """
    return _transfer_tool(tuple(dict.fromkeys(targets)))


@functools.lru_cache(maxsize=256)
def _transfer_tool(targets: tuple[str, ...]) -> ToolSpec:
    parameters = [Parameter("reason", str, REQUIRED, _REASON_FOR_TRANSFER)]
    if targets:
        names = cast(Any, Literal)[targets]  # Literal["desk", ...]
        parameters.append(Parameter("target", names, OPTIONAL, _TARGET))
    return _builtin(TRANSFER_TO_HUMAN, _TRANSFER, parameters)


def _builtin(name: str, description: str, parameters: Sequence[Parameter]) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        arguments=Arguments(parameters),
        function=None,
        is_async=False,
        timeout=None,
        builtin=True,
    )


BUILTIN_TOOLS: Mapping[str, ToolSpec] = MappingProxyType(
    {
        TRANSFER_TO_HUMAN: _builtin(
            TRANSFER_TO_HUMAN,
            _TRANSFER,
            [
                Parameter("reason", str, REQUIRED, _REASON_FOR_TRANSFER),
                Parameter("target", str, OPTIONAL, _TARGET),
            ],
        ),
        END_CALL: _builtin(
            END_CALL,
            "End the phone call. Call this only when the conversation is over: the caller has "
            "said goodbye or confirmed they need nothing else, or the call is plainly not meant "
            "for this line. The caller hears a short goodbye, then the line closes.",
            [Parameter("reason", str, REQUIRED, "Why the call ends, in a few words.")],
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
                    f"tool {quoted(spec.name)} ({qualname(function)}) has the name of a built-in "
                    "tool; rename it with @callcenter.tool(name=...)"
                )
            if spec.name in specs:
                first, first_index = specs[spec.name]
                if first.function is function:
                    continue  # the same function, re-exported by another listed module
                raise error(
                    f"tool {quoted(spec.name)} is defined twice: {qualname(function)} and "
                    f"{qualname(first.function)} (tool_modules[{first_index}])"
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
    found = {value: None for value in vars(module).values() if mark_of(value) is not None}
    return list(found)
