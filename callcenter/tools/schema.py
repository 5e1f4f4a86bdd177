"""A tool's parameters as one tree of kinds: each gives its JSON Schema and checks a value.

Building the schema and validating the model's arguments walk the same tree, so the two
cannot disagree. Supported annotations (anything else is a TypeError):

========================================  =================================================
annotation                                JSON Schema, and what the function receives
========================================  =================================================
``str``, ``int``, ``float``, ``bool``     string, integer, number, boolean (an integral
                                          float passes as an int; an int as a float)
``None``, ``X | None``, ``Optional[X]``   null, or X-or-null
``X | Y``, ``Union[X, Y]``                anyOf; the first option that accepts the value wins
``Literal["a", 2]``                       enum of the literals
``Enum`` subclass (str or int values)     enum of the values; the function gets the member
``list[T]``, ``Sequence[T]``              array of T; the function gets a list
``tuple[T, ...]``                         array of T; the function gets a tuple
``dict[str, T]``, ``Mapping[str, T]``     object with any keys, values T
dataclass                                 object of its fields; the function gets an instance
``TypedDict``                             object of its keys; the function gets a dict
``Any``                                   any JSON value, unchecked
``Annotated[T, "description"]``           T, with that description
========================================  =================================================

Objects refuse keys they do not declare. Pydantic models, ``datetime`` and other classes are
not supported as parameters. Recursive types are refused.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import types
import typing
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union, get_args, get_origin, get_type_hints

from callcenter.config.reader import quoted
from callcenter.tools.docstring import parse_docstring

__all__ = [
    "Arguments",
    "Field",
    "Kind",
    "Mismatch",
    "ObjectKind",
    "function_arguments",
    "parse_json_arguments",
]

Json = dict[str, Any]


class Kind(Protocol):
    """One node of the tree: a JSON Schema, and a check that converts a JSON value."""

    def schema(self) -> Json: ...

    def convert(self, value: object, path: str) -> object:
        """The value for the function; ValueError naming ``path`` if ``value`` does not fit."""
        ...


_JSON_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
    "array": "an array",
    "object": "an object",
}


def json_type(value: object) -> str:
    """The JSON type of a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class Mismatch(ValueError):
    """A value of the wrong JSON type at ``path``; ``expected`` reads like "an integer"."""

    def __init__(self, path: str, expected: str, value: object) -> None:
        self.path = path
        self.expected = expected
        self.actual = _JSON_TYPE_NAMES[json_type(value)]
        where = f"'{path}' must be" if path else "the arguments must be"
        super().__init__(f"{where} {expected}, not {self.actual}")


@dataclass(frozen=True, slots=True)
class ScalarKind:
    """A JSON string, integer, number, boolean or null."""

    kind: Literal["string", "integer", "number", "boolean", "null"]

    def schema(self) -> Json:
        return {"type": self.kind}

    def convert(self, value: object, path: str) -> object:
        actual = json_type(value)
        if actual == self.kind:
            return value
        if self.kind == "number" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.kind == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        raise Mismatch(path, _JSON_TYPE_NAMES[self.kind], value)


@dataclass(frozen=True, slots=True)
class AnyKind:
    """Any JSON value, passed through unchecked."""

    def schema(self) -> Json:
        return {}

    def convert(self, value: object, path: str) -> object:
        return value


@dataclass(frozen=True, slots=True)
class ChoiceKind:
    """One of fixed JSON values (a ``Literal`` or an ``Enum``); ``members`` maps each to its
    Python value (the Enum member, or the literal itself)."""

    members: tuple[tuple[str | int | bool | None, object], ...]

    def schema(self) -> Json:
        values = [value for value, _ in self.members]
        kinds = list(dict.fromkeys(json_type(value) for value in values))
        return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}

    def convert(self, value: object, path: str) -> object:
        for json_value, member in self.members:
            if json_value == value and json_type(json_value) == json_type(value):
                return member
        allowed = ", ".join(json.dumps(json_value) for json_value, _ in self.members)
        raise ValueError(f"'{path}' must be one of {allowed}, not {json.dumps(value)}")


@dataclass(frozen=True, slots=True)
class ArrayKind:
    """A JSON array of ``item``s; a tuple for the function when ``as_tuple``."""

    item: Kind
    as_tuple: bool = False

    def schema(self) -> Json:
        return {"type": "array", "items": self.item.schema()}

    def convert(self, value: object, path: str) -> object:
        if not isinstance(value, list):
            raise Mismatch(path, "an array", value)
        items = [self.item.convert(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return tuple(items) if self.as_tuple else items


@dataclass(frozen=True, slots=True)
class MapKind:
    """A JSON object with any keys, each value a ``value``."""

    value: Kind

    def schema(self) -> Json:
        return {"type": "object", "additionalProperties": self.value.schema()}

    def convert(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise Mismatch(path, "an object", value)
        return {key: self.value.convert(item, f"{path}.{key}") for key, item in value.items()}


@dataclass(frozen=True, slots=True)
class UnionKind:
    """Any of ``options``, tried in order."""

    options: tuple[Kind, ...]

    def schema(self) -> Json:
        schemas = [option.schema() for option in self.options]
        if len(schemas) == 2 and {"type": "null"} in schemas:
            other = schemas[0] if schemas[1] == {"type": "null"} else schemas[1]
            if isinstance(other.get("type"), str):  # the usual Optional: widen the type
                nullable = {**other, "type": [other["type"], "null"]}
                if "enum" in other:
                    nullable["enum"] = [*other["enum"], None]
                return nullable
        return {"anyOf": schemas}

    def convert(self, value: object, path: str) -> object:
        """The first option's value that fits; else the error of an option whose JSON type
        matched (its problem lies deeper), or one naming every type expected."""
        expected: list[str] = []
        deeper: list[ValueError] = []
        for option in self.options:
            try:
                return option.convert(value, path)
            except Mismatch as error:
                if error.path == path:
                    expected.append(error.expected)
                else:
                    deeper.append(error)
            except ValueError as error:
                deeper.append(error)
        if deeper:
            raise deeper[0]
        raise Mismatch(path, " or ".join(dict.fromkeys(expected)), value)


@dataclass(frozen=True, slots=True)
class Field:
    """One property of an object: a parameter, a dataclass field or a TypedDict key."""

    name: str
    kind: Kind
    required: bool
    description: str | None = None
    default: object = None  # shown to the model when simple JSON; ``required`` decides use


@dataclass(frozen=True, slots=True)
class ObjectKind:
    """A JSON object with exactly ``fields``; ``build`` makes the function's value of it."""

    fields: tuple[Field, ...]
    build: Callable[..., object] = dict
    description: str | None = None

    def schema(self) -> Json:
        properties: Json = {}
        for item in self.fields:
            prop = item.kind.schema()
            if item.description:
                prop = {**prop, "description": item.description}
            if not item.required and item.default is not None and _is_simple_json(item.default):
                prop = {**prop, "default": _json_value(item.default)}
            properties[item.name] = prop
        schema: Json = {"type": "object"}
        if self.description:
            schema["description"] = self.description
        schema["properties"] = properties
        schema["required"] = [item.name for item in self.fields if item.required]
        schema["additionalProperties"] = False
        return schema

    def convert(self, value: object, path: str) -> object:
        return self.build(**self.convert_fields(value, path))

    def convert_fields(self, value: object, path: str) -> dict[str, object]:
        """The checked fields present in ``value`` (absent optional ones are left out)."""
        if not isinstance(value, dict):
            raise Mismatch(path, "an object", value)
        known = {item.name for item in self.fields}
        unknown = [key for key in value if key not in known]
        if unknown:
            where = f"'{path}' has an unexpected key" if path else "unexpected argument"
            expected = ", ".join(item.name for item in self.fields) or "none"
            raise ValueError(f"{where} '{unknown[0]}' (expected: {expected})")
        converted: dict[str, object] = {}
        for item in self.fields:
            item_path = f"{path}.{item.name}" if path else item.name
            if item.name in value:
                converted[item.name] = item.kind.convert(value[item.name], item_path)
            elif item.required:
                raise ValueError(f"'{item_path}' is required")
        return converted


Arguments = ObjectKind  # the top-level object: a tool's parameters


def parse_json_arguments(arguments: Arguments | None, text: str) -> dict[str, Any]:
    """The keyword arguments in the JSON ``text``, checked against ``arguments`` when given.

    Raises ValueError saying what is wrong, for the model to read. An empty ``text`` is ``{}``.
    """
    try:
        value = json.loads(text or "{}", parse_constant=_refuse_constant)
    except ValueError as error:
        raise ValueError(f"the arguments are not valid JSON ({error})") from None
    if arguments is None:
        if not isinstance(value, dict):
            raise Mismatch("", "an object", value)
        return value
    return arguments.convert_fields(value, "")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def function_arguments(function: Callable[..., Any]) -> Arguments:
    """The parameters of ``function`` as an object kind; TypeError if one is unsupported."""
    try:
        hints = get_type_hints(function, include_extras=True)
    except Exception as error:  # any error evaluating an annotation string
        raise TypeError(f"cannot resolve its annotations: {error}") from error
    docs = parse_docstring(function.__doc__).params
    fields: list[Field] = []
    for parameter in inspect.signature(function).parameters.values():
        name = parameter.name
        where = f"parameter {quoted(name)}"
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{where}: *args and **kwargs cannot be tool parameters")
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise TypeError(f"{where}: positional-only parameters are not supported")
        if name not in hints:
            raise TypeError(f"{where} has no type annotation")
        try:
            kind, note = _kind(hints[name], ())
        except TypeError as error:
            raise TypeError(f"{where}: {error}") from None
        optional = parameter.default is not parameter.empty
        default = parameter.default if optional else None
        fields.append(Field(name, kind, not optional, note or docs.get(name), default))
    return ObjectKind(tuple(fields))


def _kind(annotation: Any, seen: tuple[type, ...]) -> tuple[Kind, str | None]:
    """The kind for ``annotation``, and its ``Annotated`` description if any."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        inner, *metadata = get_args(annotation)
        kind, note = _kind(inner, seen)
        texts = [item for item in metadata if isinstance(item, str)]
        return kind, texts[0] if texts else note
    return _plain_kind(annotation, origin, seen), None


_SCALARS: dict[object, Literal["string", "integer", "number", "boolean", "null"]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    None: "null",
    type(None): "null",
}


def _plain_kind(annotation: Any, origin: object, seen: tuple[type, ...]) -> Kind:
    args = get_args(annotation)
    if isinstance(annotation, Hashable) and annotation in _SCALARS:
        return ScalarKind(_SCALARS[annotation])
    if annotation is Any:
        return AnyKind()
    if origin is Union or origin is types.UnionType:
        return UnionKind(tuple(_kind(arg, seen)[0] for arg in args))
    if origin is Literal:
        return _literal(args)
    if annotation is tuple:
        return ArrayKind(AnyKind(), as_tuple=True)
    if annotation in (list, Sequence) or origin in (list, Sequence):
        return ArrayKind(_kind(args[0], seen)[0] if args else AnyKind())
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{_name(annotation)}: only tuple[T, ...] is supported")
        return ArrayKind(_kind(args[0], seen)[0], as_tuple=True)
    if annotation in (dict, Mapping) or origin in (dict, Mapping):
        if args and args[0] is not str:
            raise TypeError(f"{_name(annotation)}: object keys must be str")
        return MapKind(_kind(args[1], seen)[0] if args else AnyKind())
    if isinstance(annotation, type):
        if annotation in seen:
            raise TypeError(f"{_name(annotation)} refers to itself; recursive types are refused")
        if issubclass(annotation, enum.Enum):
            return _enum(annotation)
        if dataclasses.is_dataclass(annotation):
            return _dataclass(annotation, (*seen, annotation))
        if typing.is_typeddict(annotation):
            return _typed_dict(annotation, (*seen, annotation))
    raise TypeError(
        f"unsupported type {_name(annotation)}; use str, int, float, bool, None, Literal, "
        "an Enum, list, tuple[T, ...], dict[str, T], a dataclass, a TypedDict or Any"
    )


def _literal(values: tuple[Any, ...]) -> ChoiceKind:
    for value in values:
        if not (value is None or isinstance(value, str | int)):
            raise TypeError(f"Literal value {value!r} is not a string, integer, boolean or None")
    return ChoiceKind(tuple((value, value) for value in values))


def _enum(cls: type[enum.Enum]) -> ChoiceKind:
    members: list[tuple[str | int | bool | None, object]] = []
    for member in cls:
        if not isinstance(member.value, str | int):
            raise TypeError(f"{_name(cls)}.{member.name}: Enum values must be strings or integers")
        members.append((member.value, member))
    return ChoiceKind(tuple(members))


def _dataclass(cls: type[Any], seen: tuple[type, ...]) -> ObjectKind:
    hints = _class_hints(cls)
    docs = parse_docstring(_own_doc(cls))
    fields: list[Field] = []
    for item in dataclasses.fields(cls):
        if not item.init:
            continue
        kind, note = _kind(hints[item.name], seen)
        has_default = (
            item.default is not dataclasses.MISSING
            or item.default_factory is not dataclasses.MISSING
        )
        default = item.default if item.default is not dataclasses.MISSING else None
        description = note or docs.params.get(item.name)
        fields.append(Field(item.name, kind, not has_default, description, default))
    return ObjectKind(tuple(fields), cls, docs.summary or None)


def _typed_dict(cls: type[Any], seen: tuple[type, ...]) -> ObjectKind:
    hints = _class_hints(cls)
    docs = parse_docstring(_own_doc(cls))
    fields: list[Field] = []
    for name, hint in hints.items():
        # Under `from __future__ import annotations`, __required_keys__ misses these markers.
        required = name in cls.__required_keys__
        if get_origin(hint) in (typing.Required, typing.NotRequired):
            required = get_origin(hint) is typing.Required
            hint = get_args(hint)[0]
        kind, note = _kind(hint, seen)
        fields.append(Field(name, kind, required, note or docs.params.get(name)))
    return ObjectKind(tuple(fields), dict, docs.summary or None)


def _class_hints(cls: type[Any]) -> dict[str, Any]:
    try:
        return get_type_hints(cls, include_extras=True)
    except Exception as error:  # any error evaluating an annotation string
        raise TypeError(f"cannot resolve the annotations of {_name(cls)}: {error}") from error


def _own_doc(cls: type[Any]) -> str | None:
    """The class's own docstring; not the ``Name(field: type, …)`` a dataclass makes up."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or doc.startswith(f"{cls.__name__}("):
        return None
    return doc


def _name(annotation: Any) -> str:
    if isinstance(annotation, type) and not get_args(annotation):
        module = annotation.__module__
        prefix = "" if module == "builtins" else f"{module}."
        return f"{prefix}{annotation.__qualname__}"
    return repr(annotation).replace("typing.", "")


def _is_simple_json(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | enum.Enum)


def _json_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    return value
