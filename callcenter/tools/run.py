"""Run one tool call: check the arguments, call the function with a timeout, encode the result.

:func:`run_tool` never raises for anything the tool or the model did wrong: every failure
becomes an ``{"error": "..."}`` output the model can act on. Only cancellation propagates,
so a call that ends can cancel its pending tools.

The result rule: a ``str`` is sent as ``{"result": "<the string>"}``; anything else is sent
as its JSON (dict, list, number, bool, None), with dataclasses and pydantic models as
objects, Enums as their value, dates and times as ISO 8601 strings and UUIDs as strings.
A result that cannot be written as JSON (a set, NaN, another object) is an error output.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import datetime
import enum
import functools
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pydantic

from callcenter.tools.spec import ToolSpec

__all__ = ["ToolResult", "encode_result", "run_tool"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """How a tool call went: ``output`` is the JSON string to send as function_call_output.

    ``error`` repeats the failure for the record (None when ``ok``); ``duration`` is the
    time spent in seconds, argument checking included; ``timed_out`` tells that the tool
    was stopped waiting for at its timeout (a TimeoutError the tool raised itself is not).
    """

    ok: bool
    output: str
    error: str | None
    duration: float
    timed_out: bool = False


async def run_tool(
    spec: ToolSpec,
    arguments: str,
    *,
    timeout: float,  # noqa: ASYNC109 -- each tool has its own bound, applied inside
    executor: concurrent.futures.Executor | None = None,
) -> ToolResult:
    """Run ``spec`` with the model's JSON ``arguments``, within ``timeout`` seconds.

    A sync function runs in ``executor`` (the loop's default one when None), in a copy of
    the caller's context; a sync tool that times out keeps its thread until it returns, as
    threads cannot be stopped. Raises only CancelledError.
    """
    started = time.perf_counter()

    def failed(error: str, *, timed_out: bool = False) -> ToolResult:
        output = json.dumps({"error": error}, ensure_ascii=False)
        return ToolResult(False, output, error, time.perf_counter() - started, timed_out)

    if spec.function is None:
        return failed(f"{spec.name} is carried out by the call, not run as a function")
    try:
        kwargs = spec.arguments.parse(arguments)
    except ValueError as error:
        return failed(f"invalid arguments: {error}")
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            value = await _call(spec, kwargs, executor)
    except TimeoutError as error:
        if scope.expired():
            return failed(f"the tool timed out after {timeout:g}s", timed_out=True)
        return failed(_describe(error))
    except Exception as error:  # the company's code: any failure is the tool's output
        logger.warning("tool raised", extra={"tool": spec.name}, exc_info=True)
        return failed(_describe(error))
    try:
        output = encode_result(value)
    except (TypeError, ValueError) as error:
        return failed(f"the tool ran, but its result cannot be sent as JSON ({error})")
    return ToolResult(True, output, None, time.perf_counter() - started)


async def _call(
    spec: ToolSpec, kwargs: dict[str, Any], executor: concurrent.futures.Executor | None
) -> Any:
    function = spec.function
    assert function is not None
    if spec.is_async:
        return await function(**kwargs)
    context = contextvars.copy_context()
    call = functools.partial(context.run, function, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def _describe(error: BaseException) -> str:
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def encode_result(value: object) -> str:
    """A tool's return value as the output string (the rule is in the module docstring)."""
    if isinstance(value, str):
        value = {"result": value}
    return json.dumps(value, default=_plain, allow_nan=False, ensure_ascii=False)


def _plain(value: object) -> object:
    """A JSON-ready stand-in for what ``json`` cannot write itself."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"a {type(value).__name__} is not JSON")
