"""A tool's parameters as a pydantic model: the JSON Schema the model is shown, and the check
of the arguments it sends back.

Both come from one model built with ``pydantic.create_model`` (a field per parameter), so they
cannot disagree. A parameter may have any type pydantic validates from JSON and describes in
JSON Schema: ``str``, ``int``, ``float``, ``bool``, ``None``, unions, ``Literal``, ``Enum``,
``list``/``tuple``/``set``/``dict``, dates, times and UUIDs (ISO strings), dataclasses,
TypedDicts (``typing_extensions.TypedDict`` before Python 3.12) and pydantic models. Anything
else, or a type that refers to itself, is a TypeError naming the parameter. Checking is
pydantic's lax JSON mode: ``"2"`` passes for an ``int``, an Enum parameter receives the member,
a dataclass or model parameter an instance. Dataclasses and TypedDicts refuse keys they do
not declare, as the top level does; a pydantic model keeps its own ``extra`` setting.

The schema is a plain object for a Realtime function tool: ``type``, ``properties`` and
``required`` at the top, every definition inlined (no ``$ref``, which is why recursive types
are refused), no ``title``s. A parameter's description comes from ``Annotated[T, "text"]``,
from ``Annotated[T, pydantic.Field(description=...)]``, or from the function's docstring
(Google ``Args:``, reST ``:param x:`` or NumPy ``Parameters``, read by docstring_parser). A
class used as a type is described by its docstring's first paragraph, and its fields by the
docstring's ``Attributes:`` entries unless they carry their own description.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

import docstring_parser
import pydantic
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import ErrorDetails, PydanticUndefined, core_schema

from callcenter.config.reader import quoted

__all__ = ["OPTIONAL", "REQUIRED", "Arguments", "Docstring", "Parameter", "parse_docstring"]

Json = dict[str, Any]

REQUIRED: Any = PydanticUndefined
"""The default of a parameter that has none: the model must pass it."""
OPTIONAL: Any = object()
"""The default of a parameter the model may leave out, with no default value to show it."""

_CONFIG = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)
_DATA_KEYS = frozenset({"default", "enum", "const", "examples"})  # JSON values, not schemas
_SHOWN_PROBLEMS = 3


@dataclass(frozen=True, slots=True)
class Docstring:
    """What a docstring says: its first paragraph and a description per parameter name."""

    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """The first paragraph of ``doc`` on one line, and each documented parameter's text.

    docstring_parser tries every style and keeps the one that reads the most; its NumPy
    reader never fails, so neither does this.
    """
    if not doc:
        return Docstring()
    parsed = docstring_parser.parse(doc)
    summary = (parsed.description or "").split("\n\n", 1)[0]
    params = {item.arg_name: _one_line(item.description or "") for item in parsed.params}
    return Docstring(_one_line(summary), {name: text for name, text in params.items() if text})


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter of a tool: its name, its annotation, its default and its description."""

    name: str
    annotation: Any
    default: Any = REQUIRED
    description: str | None = None


class Arguments:
    """The parameters of a tool: their JSON Schema, and the check of the model's arguments."""

    def __init__(self, parameters: Sequence[Parameter]) -> None:
        """Raise TypeError naming the first parameter whose type cannot be a tool's."""
        fields: dict[str, Any] = {}
        for index, parameter in enumerate(parameters):
            try:
                _json_schema(parameter.annotation)
            except (pydantic.PydanticUserError, pydantic.PydanticUndefinedAnnotation) as error:
                reason = _unsupported(parameter.annotation, error)
                raise TypeError(f"parameter {quoted(parameter.name)}: {reason}") from None
            except TypeError as error:  # a recursive type
                raise TypeError(f"parameter {quoted(parameter.name)}: {error}") from None
            description = _description(parameter)
            if parameter.default is OPTIONAL:  # a factory's value is not shown in the schema
                info = pydantic.Field(
                    default_factory=type(None), alias=parameter.name, description=description
                )
            else:
                info = pydantic.Field(
                    parameter.default, alias=parameter.name, description=description
                )
            # Fields are named p0, p1… and aliased, so that no parameter name can clash with
            # BaseModel's own attributes or be taken for a private one.
            fields[f"p{index}"] = (parameter.annotation, info)
        self._model = pydantic.create_model("Arguments", __config__=_CONFIG, **fields)
        self._names = {key: info.alias or key for key, info in self._model.model_fields.items()}
        self.schema: Json = {
            "type": "object",
            "properties": {},
            "required": [],
            **_json_schema(self._model),
        }

    def parse(self, text: str) -> dict[str, Any]:
        """The keyword arguments in the JSON ``text`` (empty: none), checked and converted.

        Optional parameters the model left out are absent, so the function's defaults apply.
        Raises ValueError saying what is wrong, for the model to read, e.g.
        ``'order_id': Field required``.
        """
        try:
            values = self._model.model_validate_json(text or "{}")
        except pydantic.ValidationError as error:
            raise ValueError(_problems(error)) from None
        given = values.model_fields_set
        return {name: getattr(values, key) for key, name in self._names.items() if key in given}


def _description(parameter: Parameter) -> str | None:
    """``Annotated[T, "text"]`` or ``Annotated[T, Field(description=…)]`` over the docstring."""
    if get_origin(parameter.annotation) is Annotated:
        for item in reversed(get_args(parameter.annotation)[1:]):
            if isinstance(item, str):
                return item
            if isinstance(item, FieldInfo) and item.description:
                return item.description
    return parameter.description


def _json_schema(annotation: Any) -> Json:
    """The JSON Schema of ``annotation``, its definitions inlined and its titles left out."""
    schema = pydantic.TypeAdapter(annotation).json_schema(schema_generator=_ToolSchema)
    definitions = schema.pop("$defs", {})
    return _inline(schema, definitions, ())


class _ToolSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with classes described by their docstrings' parts."""

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        return _described(super().dataclass_schema(schema), schema["cls"])

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        return _described(super().model_schema(schema), schema["cls"])

    def typed_dict_schema(self, schema: core_schema.TypedDictSchema) -> JsonSchemaValue:
        return _described(super().typed_dict_schema(schema), schema.get("cls"))


def _described(schema: Json, cls: type[Any] | None) -> Json:
    """``schema`` of ``cls`` described by the summary of its docstring, not the whole text,
    and its undescribed fields by the docstring's ``Attributes:`` entries."""
    doc = getattr(cls, "__doc__", None)
    if cls is None or not doc or doc.startswith(f"{cls.__name__}("):  # a dataclass's made-up doc
        return schema
    docs = parse_docstring(doc)
    if schema.get("description") == inspect.cleandoc(doc):  # pydantic's: the whole text
        del schema["description"]
        if docs.summary:
            schema["description"] = docs.summary
    for name, prop in schema.get("properties", {}).items():
        if name in docs.params and isinstance(prop, dict):
            prop.setdefault("description", docs.params[name])
    return schema


def _inline(node: Json, definitions: Json, seen: tuple[str, ...]) -> Json:
    """``node`` with each ``$ref`` replaced by its definition, and no ``title``."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rpartition("/")[2]
        if name in seen:
            raise TypeError(f"{name} refers to itself; recursive types are refused")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**definitions[name], **siblings}, definitions, (*seen, name))
    tidy: Json = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in _DATA_KEYS:
            tidy[key] = value
        elif key in ("properties", "patternProperties"):
            tidy[key] = {name: _inline(sub, definitions, seen) for name, sub in value.items()}
        elif isinstance(value, dict):
            tidy[key] = _inline(value, definitions, seen)
        elif isinstance(value, list):
            tidy[key] = [_inline(v, definitions, seen) if isinstance(v, dict) else v for v in value]
        else:
            tidy[key] = value
    return tidy


def _unsupported(
    annotation: Any, error: pydantic.PydanticUserError | pydantic.PydanticUndefinedAnnotation
) -> str:
    name = _type_name(annotation)
    if isinstance(error, pydantic.PydanticSchemaGenerationError):
        return f"unsupported type {name}; pydantic cannot check it from JSON"
    if isinstance(error, pydantic.PydanticInvalidForJsonSchema):
        return f"unsupported type {name}; it has no JSON Schema"
    if error.code == "class-not-fully-defined":
        return f"unsupported type {name}; it refers to a name that is not defined"
    return f"unsupported type {name}: {error.message}"


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not get_args(annotation):
        module = annotation.__module__
        prefix = "" if module == "builtins" else f"{module}."
        return f"{prefix}{annotation.__qualname__}"
    return repr(annotation).replace("typing.", "")


def _problems(error: pydantic.ValidationError) -> str:
    """The first few of pydantic's errors, each as ``'path': message``."""
    details = error.errors(include_url=False, include_input=False)
    problems = [_problem(item) for item in details[:_SHOWN_PROBLEMS]]
    if len(details) > _SHOWN_PROBLEMS:
        problems.append(f"and {len(details) - _SHOWN_PROBLEMS} more")
    return "; ".join(problems)


def _problem(item: ErrorDetails) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"])
    path = path.removeprefix(".")
    return f"'{path}': {item['msg']}" if path else item["msg"]
