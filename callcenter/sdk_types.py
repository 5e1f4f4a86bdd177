"""Checking plain data against the openai SDK's TypedDicts, as the API would.

Used by the config (a route's ``session`` table) and the emulator (request bodies and client
events) alike. :func:`problems` gives every pydantic error of a value in strict mode, with
the ``Iterable[...]`` fields (message content parts, ``response.create`` input and tools)
checked in full: pydantic validates those lazily, so each is drained here and its errors
given with the whole path. :func:`unknown_key` finds keys the TypedDicts do not declare
(pydantic ignores them). :func:`first_problem` picks the error that matters: the one
through the union members the data's own ``type``/``role`` select.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typing_extensions
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

__all__ = ["Problem", "first_problem", "matches", "problems", "unknown_key", "unwrap"]

_WRAPPERS = (typing.Required, typing.NotRequired)
_SEQUENCES = (list, Iterable, Sequence)


@dataclass(frozen=True, slots=True)
class Problem:
    """One type error: the data path (keys and list indexes) and pydantic's details."""

    path: tuple[str | int, ...]
    error: ErrorDetails

    @property
    def kind(self) -> str:
        """pydantic's error type, e.g. ``literal_error``, ``missing``, ``string_type``."""
        return self.error["type"]


def problems(value: object, schema: Any) -> list[ErrorDetails]:
    """Every strict-mode error of ``value`` against ``schema``, Iterable fields included."""
    try:
        validated = _adapter(schema).validate_python(value, strict=True)
    except ValidationError as exc:
        return list(exc.errors())
    return list(_drain(validated, ()))


def first_problem(value: object, schema: Any) -> Problem | None:
    """The error to report for ``value``, or None when it is valid."""
    errors = problems(value, schema)
    if not errors:
        return None
    known = _typeddicts(schema)
    located = [(error, *_locate(value, error["loc"], known)) for error in errors]
    first, path, _ = next((found for found in located if found[2]), located[0])
    return Problem(path, first)


def unknown_key(
    value: object, annotation: Any, path: tuple[str | int, ...] = ()
) -> tuple[str | int, ...] | None:
    """The path of the first key of ``value`` that ``annotation`` does not know."""
    annotation = unwrap(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(value, list) and origin in _SEQUENCES:
        (element,) = typing.get_args(annotation) or (Any,)
        for index, item in enumerate(value):
            found = unknown_key(item, element, (*path, index))
            if found is not None:
                return found
        return None
    if not isinstance(value, dict):
        return None
    members = [annotation] if _is_typeddict(annotation) else []
    if origin in (typing.Union, types.UnionType):
        members = [m for m in map(unwrap, typing.get_args(annotation)) if _is_typeddict(m)]
        members = [m for m in members if matches(value, m)]
    if len(members) != 1:
        return None
    hints = _hints(members[0])
    for key, item in value.items():
        if key not in hints:
            return (*path, key)
        found = unknown_key(item, hints[key], (*path, key))
        if found is not None:
            return found
    return None


def matches(value: Mapping[str, Any], member: Any) -> bool:
    """Whether ``value``'s ``type``/``role`` fit the TypedDict ``member`` of a union."""
    hints = _hints(member)
    for key in ("type", "role"):
        if key not in hints:
            continue
        allowed = typing.get_args(unwrap(hints[key]))
        if key in value:
            if value[key] not in allowed:
                return False
        elif key in member.__required_keys__:
            return False
    return True


def unwrap(annotation: Any) -> Any:
    """``annotation`` without Annotated, Required/NotRequired and Optional around it."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated or origin in _WRAPPERS:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _drain(validated: object, loc: tuple[int | str, ...]) -> Iterator[ErrorDetails]:
    """Run pydantic's lazy validators of the Iterable fields inside ``validated``."""
    if isinstance(validated, dict):
        for key, item in validated.items():
            yield from _drain(item, (*loc, key))
    elif isinstance(validated, list | tuple):
        for index, item in enumerate(validated):
            yield from _drain(item, (*loc, index))
    elif type(validated).__name__ == "ValidatorIterator":
        iterator = typing.cast(Iterator[object], validated)
        index = 0
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except ValidationError as exc:
                for error in exc.errors():
                    yield typing.cast(ErrorDetails, {**error, "loc": (*loc, *error["loc"])})
                return
            yield from _drain(item, (*loc, index))
            index += 1


def _locate(
    value: object, loc: tuple[int | str, ...], known: Mapping[str, Any]
) -> tuple[tuple[str | int, ...], bool]:
    """The data path of a pydantic ``loc``, and whether it went through the union members
    that the data's ``type``/``role`` select (errors from other members are noise)."""
    path: tuple[str | int, ...] = ()
    current, relevant = value, True
    for part in loc:
        in_list = isinstance(part, int) and isinstance(current, list) and part < len(current)
        if in_list or (isinstance(current, dict) and part in current):
            path, current = (*path, part), current[part]  # type: ignore[index]
        elif isinstance(part, str) and part in known and isinstance(current, dict):
            relevant = relevant and matches(current, known[part])
    return path, relevant


def _is_typeddict(annotation: Any) -> bool:
    return typing_extensions.is_typeddict(annotation)


@functools.cache
def _typeddicts(schema: Any) -> dict[str, Any]:
    """Every TypedDict reachable from ``schema``, by class name (pydantic's union tags)."""
    found: dict[str, Any] = {}
    pending = [schema]
    while pending:
        annotation = pending.pop()
        if _is_typeddict(annotation):
            if annotation.__name__ in found:
                continue
            found[annotation.__name__] = annotation
            pending.extend(_hints(annotation).values())
        else:
            pending.extend(a for a in typing.get_args(annotation) if not isinstance(a, str))
    return found


@functools.cache
def _hints(typed_dict: Any) -> dict[str, Any]:
    return typing.get_type_hints(typed_dict, include_extras=True)


@functools.cache
def _adapter(schema: Any) -> TypeAdapter[Any]:
    return TypeAdapter(schema)
