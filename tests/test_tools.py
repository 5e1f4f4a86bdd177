"""Company tools: schemas from signatures and docstrings, loading, the registry and built-ins,
argument checking, and running tools on a real event loop and thread pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import enum
import logging
import re
import sys
import threading
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal, NotRequired, Optional

import pydantic
import pytest
from openai.types.realtime.realtime_tools_config_union import RealtimeToolsConfigUnion
from typing_extensions import TypedDict  # pydantic takes typing's only from Python 3.12

import callcenter
from callcenter.errors import ConfigError
from callcenter.tools.decorator import tool
from callcenter.tools.registry import BUILTIN_TOOLS, ToolRegistry, load_tools, transfer_tool_for
from callcenter.tools.run import run_tool
from callcenter.tools.spec import ToolSpec, parse_arguments, tool_spec

SESSION_TOOLS = pydantic.TypeAdapter(list[RealtimeToolsConfigUnion])


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Address:
    """A postal address.

    Attributes:
        street: Street and number.
    """

    street: str
    city: str = "Paris"


class Contact(TypedDict):
    name: str
    phone: NotRequired[str]


class Customer(pydantic.BaseModel):
    """A customer of the shop.

    Attributes:
        name: Their full name.
    """

    name: str
    email: str = pydantic.Field(description="Where to write.")


@dataclass
class Node:
    children: list[Node] = field(default_factory=list)


class Opaque:
    """A class pydantic knows nothing about."""


@dataclass
class Parcel:
    content: Undefined  # type: ignore[name-defined]  # noqa: F821 -- a name nobody defines


class LegacyContact(typing.TypedDict):
    name: str


def spec_with(annotation: Any, *default: Any) -> ToolSpec:
    """The spec of a tool whose one parameter ``value`` has ``annotation`` (and a default)."""

    def value_tool(value: Any = None) -> None:
        """A tool."""

    value_tool.__annotations__ = {"value": annotation, "return": None}
    value_tool.__defaults__ = default or None
    return tool_spec(tool(value_tool))


# -- schemas -----------------------------------------------------------------------------------

ADDRESS_SCHEMA = {
    "type": "object",
    "description": "A postal address.",
    "properties": {
        "street": {"type": "string", "description": "Street and number."},
        "city": {"type": "string", "default": "Paris"},
    },
    "required": ["street"],
    "additionalProperties": False,
}
CUSTOMER_SCHEMA = {  # a model keeps its own ``extra`` setting: no additionalProperties
    "type": "object",
    "description": "A customer of the shop.",
    "properties": {
        "name": {"type": "string", "description": "Their full name."},
        "email": {"type": "string", "description": "Where to write."},
    },
    "required": ["name", "email"],
}


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (str | None, {"anyOf": [{"type": "string"}, {"type": "null"}]}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, "a"], {"enum": [1, "a"]}),
        (Literal["a"] | None, {"anyOf": [{"type": "string", "const": "a"}, {"type": "null"}]}),
        (Colour, {"type": "string", "enum": ["red", "green"]}),
        (Priority, {"type": "integer", "enum": [1, 2]}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (Sequence[int], {"type": "array", "items": {"type": "integer"}}),
        (tuple[float, ...], {"type": "array", "items": {"type": "number"}}),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (list, {"type": "array", "items": {}}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (Mapping[str, bool], {"type": "object", "additionalProperties": {"type": "boolean"}}),
        (dict, {"type": "object", "additionalProperties": True}),
        (Any, {}),
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (date, {"type": "string", "format": "date"}),
        (Address, ADDRESS_SCHEMA),
        (Customer, CUSTOMER_SCHEMA),
        (list[Address], {"type": "array", "items": ADDRESS_SCHEMA}),
        (
            Contact,
            {
                "type": "object",
                "properties": {"name": {"type": "string"}, "phone": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        ),
        (Annotated[str, "The city"], {"type": "string", "description": "The city"}),
        (
            Annotated[str, pydantic.Field(description="The city", max_length=40)],
            {"type": "string", "description": "The city", "maxLength": 40},
        ),
    ],
)
def test_parameter_schema(annotation: Any, schema: dict[str, Any]) -> None:
    """Each supported annotation becomes its JSON Schema, inlined, and the parameter is required."""
    spec = spec_with(annotation)
    assert spec.parameters == {
        "type": "object",
        "properties": {"value": schema},
        "required": ["value"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    ("annotation", "default", "shown"),
    [(int, 3, 3), (Colour, Colour.RED, "red"), (str | None, None, None), (list[str], [], [])],
)
def test_parameter_with_default_is_optional(annotation: Any, default: Any, shown: Any) -> None:
    """A parameter with a default is not required, and its default is shown to the model."""
    spec = spec_with(annotation, default)
    assert spec.parameters["required"] == []
    assert spec.parameters["properties"]["value"].get("default") == shown


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        (Opaque, "unsupported type tests.test_tools.Opaque; pydantic cannot check it from JSON"),
        (list[Opaque] | None, "unsupported type list[tests.test_tools.Opaque] | None"),
        (Callable[[int], int], "it has no JSON Schema"),
        (Node, "Node refers to itself; recursive types are refused"),
        (Parcel, "tests.test_tools.Parcel; it refers to a name that is not defined"),
    ],
)
def test_unsupported_annotation_is_refused(annotation: Any, reason: str) -> None:
    """An annotation pydantic cannot check or describe is a TypeError naming the parameter."""
    with pytest.raises(TypeError, match='parameter "value"') as caught:
        spec_with(annotation)
    assert reason in str(caught.value)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="pydantic takes typing's from 3.12")
def test_typing_typed_dict_is_refused_before_python_3_12() -> None:
    """Before Python 3.12 a typing.TypedDict parameter is refused with pydantic's advice."""
    with pytest.raises(TypeError, match="Please use `typing_extensions.TypedDict` instead"):
        spec_with(LegacyContact)


def test_parameter_names_are_free() -> None:
    """A parameter may bear a name BaseModel uses itself, and the schema shows it as is."""

    def clashing(json: str, model_config: int, schema: bool = False) -> None:
        """Clash."""

    spec = tool_spec(tool(clashing))
    assert list(spec.parameters["properties"]) == ["json", "model_config", "schema"]
    arguments = '{"json": "x", "model_config": 1, "schema": true}'
    assert parse_arguments(spec, arguments) == {"json": "x", "model_config": 1, "schema": True}


GOOGLE = """Find an order by its number.

Tells its status. This second paragraph is not part of the description.

Args:
    order_id (str): The order number,
        as the caller reads it.
    quantity: How many to check.

Returns:
    The order.
"""
REST = """Find an order
by its number.

:param order_id: The order number,
    as the caller reads it.
:param int quantity: How many to check.
:returns: The order.
"""
NUMPY = """Find an order by its number.

Parameters
----------
order_id : str
    The order number,
    as the caller reads it.
quantity : int, optional
    How many to check.

Returns
-------
dict
    The order.
"""
DESCRIBED = {
    "order_id": "The order number, as the caller reads it.",
    "quantity": "How many to check.",
}


@pytest.mark.parametrize(
    ("doc", "description", "params"),
    [
        (GOOGLE, "Find an order by its number.", DESCRIBED),
        (REST, "Find an order by its number.", DESCRIBED),
        (NUMPY, "Find an order by its number.", DESCRIBED),
        ("Find an order.", "Find an order.", {}),
        (
            "Find an order.\n\nArgs:\n    quantity: How many.\n",
            "Find an order.",
            {"quantity": "How many."},
        ),
    ],
    ids=["google", "rest", "numpy", "summary-only", "some-params"],
)
def test_docstring_styles(doc: str, description: str, params: dict[str, str]) -> None:
    """The first paragraph describes the tool and each style's entries describe parameters."""

    def find_order(order_id: str, quantity: int = 1) -> None:
        pass

    find_order.__doc__ = doc
    spec = tool_spec(tool(find_order))
    assert spec.description == description
    properties = spec.parameters["properties"]
    assert {name: prop.get("description") for name, prop in properties.items()} == {
        "order_id": params.get("order_id"),
        "quantity": params.get("quantity"),
    }


def test_decorator_arguments_override_name_and_description() -> None:
    """``@tool(name=..., description=..., timeout=...)`` wins over the function's own."""

    @tool(name="find", description="Find things.", timeout=2.5)
    async def search(text: str) -> list[str]:
        """Search."""
        return [text]

    spec = tool_spec(search)
    assert (spec.name, spec.description, spec.timeout, spec.is_async) == (
        "find",
        "Find things.",
        2.5,
        True,
    )
    assert spec.as_session_tool() == {
        "type": "function",
        "name": "find",
        "description": "Find things.",
        "parameters": spec.parameters,
    }


def test_decorator_returns_the_function_unchanged() -> None:
    """``@callcenter.tool`` returns the very function, still callable as before."""

    def plain(x: int) -> int:
        """Double."""
        return 2 * x

    assert callcenter.tool(plain) is plain
    assert plain(2) == 4


def _documented() -> Callable[..., Any]:
    def documented(x: int) -> int:
        """A documented function."""
        return x

    return documented


def _undocumented(x: int) -> int:
    return x


def _generator(x: int) -> Iterator[int]:
    """Yield."""
    yield x


def _positional_only(x: int, /) -> int:
    """Positional."""
    return x


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: tool(name="has space")(_documented()), 'tool name "has space" must be'),
        (lambda: tool(timeout=0)(_documented()), "timeout must be a positive number"),
        (lambda: tool(_undocumented), "no description"),
        (lambda: tool(_generator), "a generator cannot be a tool"),
        (lambda: tool(_positional_only), "positional-only"),
        (_documented, "is not marked with @callcenter.tool"),
    ],
    ids=["name", "timeout", "description", "generator", "positional-only", "unmarked"],
)
def test_tool_spec_refuses_bad_tools(make: Callable[[], Callable[..., Any]], reason: str) -> None:
    """tool_spec says what keeps a function from being a tool."""
    with pytest.raises(TypeError, match=reason):
        tool_spec(make())


# -- loading -----------------------------------------------------------------------------------


def test_load_tools_collects_marked_functions() -> None:
    """load_tools imports the modules and finds their tools; a re-export is no duplicate."""
    registry = load_tools(["tests.tool_fixtures.orders", "tests.tool_fixtures.billing"])
    assert registry.names() == {
        "lookup_order",
        "open_ticket",
        "balance",
        "transfer_to_human",
        "end_call",
    }
    ticket = registry.get("open_ticket")
    assert ticket is not None
    assert (ticket.is_async, ticket.timeout) == (True, 2)
    assert ticket.parameters["properties"]["summary"]["description"] == (
        "What went wrong, in one sentence."
    )


def test_annotation_may_name_a_class_defined_later() -> None:
    """Schemas are built after the module is imported, so forward references resolve."""
    registry = load_tools(["tests.tool_fixtures.orders"])
    ticket = registry.get("open_ticket")
    assert ticket is not None
    address, null = ticket.parameters["properties"]["address"]["anyOf"]
    assert null == {"type": "null"}
    assert address["properties"]["city"] == {"type": "string", "description": "The city."}


CUSTOMER_TOOL_PARAMETERS = {
    "type": "object",
    "properties": {
        "customer": {
            "type": "object",
            "description": "The customer as the caller describes them.",
            "properties": {
                "name": {"type": "string", "description": "Their full name."},
                "phones": {
                    "type": "array",
                    "description": "Where to reach them.",
                    "items": {
                        "type": "object",
                        "description": "A phone number.",
                        "properties": {
                            "number": {
                                "type": "string",
                                "description": "In E.164 form.",
                                "pattern": "^\\+[0-9]{6,15}$",
                            }
                        },
                        "required": ["number"],
                    },
                    "default": [],
                },
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "notify": {
            "type": "boolean",
            "description": "Whether to email them a confirmation.",
            "default": False,
        },
    },
    "required": ["customer"],
    "additionalProperties": False,
}


def test_pydantic_model_parameter_schema() -> None:
    """A pydantic model parameter is an inlined object schema, described by docstrings and
    Fields, that the SDK takes as a session tool."""
    registry = load_tools(["tests.tool_fixtures.customers"])
    spec = registry.get("update_customer")
    assert spec is not None
    assert spec.parameters == CUSTOMER_TOOL_PARAMETERS
    assert "$ref" not in str(spec.parameters)
    SESSION_TOOLS.validate_python(registry.session_tools(["update_customer"], []))


async def test_pydantic_model_parameter_receives_an_instance() -> None:
    """The tool receives a validated model instance, and the model's checks apply."""
    registry = load_tools(["tests.tool_fixtures.customers"])
    spec = registry.get("update_customer")
    assert spec is not None
    arguments = '{"customer": {"name": "Ada", "phones": [{"number": "+14155550123"}]}}'
    result = await run_tool(spec, arguments, timeout=5)
    assert result.ok, result.error
    assert result.output == (
        '{"type": "Customer", "customer": {"name": "Ada", "phones": [{"number": "+14155550123"}]},'
        ' "notify": false}'
    )
    bad = await run_tool(
        spec, '{"customer": {"name": "Ada", "phones": [{"number": "1"}]}}', timeout=5
    )
    assert bad.error == (
        "invalid arguments: 'customer.phones[0].number': String should match pattern "
        "'^\\+[0-9]{6,15}$'"
    )


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        (["tests.tool_fixtures.nowhere"], "tool_modules[0]: no module named"),
        (["tests.tool_fixtures.missing_dependency"], "No module named 'callcenter_test_no_such"),
        (["tests.tool_fixtures.broken"], "RuntimeError: the CRM client needs CRM_URL"),
        (["tests.tool_fixtures.no_tools"], "has no @callcenter.tool function"),
        (
            ["tests.tool_fixtures.orders", "tests.tool_fixtures.duplicate"],
            'tool_modules[1]: tool "lookup_order" is defined twice',
        ),
        (["tests.tool_fixtures.builtin_clash"], '"end_call" (tests.tool_fixtures.builtin_clash'),
        (
            ["tests.tool_fixtures.unsupported"],
            'parameter "crm": unsupported type tests.tool_fixtures.unsupported.CrmClient',
        ),
        (["tests.tool_fixtures.unannotated"], 'parameter "name" has no type annotation'),
        (["tests.tool_fixtures.varargs"], "*args and **kwargs cannot be tool parameters"),
        (["tests.tool_fixtures.undocumented"], "no description"),
    ],
    ids=[
        "not-found",
        "missing-dependency",
        "import-error",
        "no-tools",
        "duplicate",
        "builtin-clash",
        "unsupported-type",
        "unannotated",
        "varargs",
        "undocumented",
    ],
)
def test_load_tools_errors_name_the_key(modules: list[str], message: str) -> None:
    """Every loading problem is a ConfigError for ``tool_modules[i]`` saying what is wrong."""
    with pytest.raises(ConfigError) as caught:
        load_tools(modules, file="callcenter.toml")
    assert str(caught.value).startswith("callcenter.toml: tool_modules[")
    assert message in str(caught.value)
    assert caught.value.key == f"tool_modules[{len(modules) - 1}]"


# -- registry and built-ins --------------------------------------------------------------------


def test_builtins_are_carried_out_by_the_session() -> None:
    """The built-ins have no function and are in every registry."""
    registry = ToolRegistry([])
    for name in ("transfer_to_human", "end_call"):
        spec = registry.get(name)
        assert spec is BUILTIN_TOOLS[name]
        assert (spec.builtin, spec.function) == (True, None)
        assert "reason" in spec.parameters["required"]


def test_transfer_tool_offers_only_the_route_targets() -> None:
    """transfer_tool_for makes ``target`` an enum of the given names."""
    spec = transfer_tool_for(["support-desk", "billing-desk"])
    target = spec.parameters["properties"]["target"]
    assert target == {
        "type": "string",
        "enum": ["support-desk", "billing-desk"],
        "description": "Which team to transfer to. Leave it out for the usual team.",
    }
    assert spec.parameters["required"] == ["reason"]
    with pytest.raises(ValueError, match="'target': Input should be 'support-desk' or 'billing"):
        parse_arguments(spec, '{"reason": "asked", "target": "sip:attacker@evil"}')


def test_transfer_tool_is_built_once_per_target_list() -> None:
    """Each accept asks for the transfer tool; the same targets give the very same spec."""
    assert transfer_tool_for(["desk", "sales"]) is transfer_tool_for(("desk", "sales", "desk"))
    assert transfer_tool_for(["desk"]) is not transfer_tool_for(["sales"])


def test_transfer_tool_without_targets_has_no_target() -> None:
    """With no targets to choose from, the model cannot pass one."""
    spec = transfer_tool_for([])
    assert list(spec.parameters["properties"]) == ["reason"]
    with pytest.raises(ValueError, match="'target': Extra inputs are not permitted"):
        parse_arguments(spec, '{"reason": "asked", "target": "desk"}')


def test_session_tools_validate_as_sdk_tools() -> None:
    """session_tools gives the route's tools, in order, in the SDK's session tool shape."""
    registry = load_tools(["tests.tool_fixtures.orders"])
    tools = registry.session_tools(
        ["lookup_order", "transfer_to_human", "open_ticket", "end_call"], ["desk"]
    )
    parsed = SESSION_TOOLS.validate_python(tools)
    assert [tool.name for tool in parsed] == [
        "lookup_order",
        "transfer_to_human",
        "open_ticket",
        "end_call",
    ]
    assert tools[1]["parameters"]["properties"]["target"]["const"] == "desk"  # type: ignore[index]


def test_session_tools_refuse_an_unknown_name() -> None:
    """A route listing a tool nobody defined is a KeyError naming it."""
    with pytest.raises(KeyError, match='no tool named "nope"'):
        ToolRegistry([]).session_tools(["nope"], [])


def test_registry_timeout_defaults() -> None:
    """A tool without its own timeout gets the registry's default."""
    registry = load_tools(["tests.tool_fixtures.orders"], default_timeout=4.0)
    lookup, ticket = registry.get("lookup_order"), registry.get("open_ticket")
    assert lookup is not None
    assert ticket is not None
    assert (registry.timeout_for(lookup), registry.timeout_for(ticket)) == (4.0, 2)


def test_registry_refuses_clashing_names() -> None:
    """Two tools of one name, or one named like a built-in, cannot share a registry."""
    spec = tool_spec(tool(_documented()))
    with pytest.raises(ValueError, match='two tools are named "documented"'):
        ToolRegistry([spec, spec])
    with pytest.raises(ValueError, match="name of a built-in"):
        ToolRegistry([BUILTIN_TOOLS["end_call"]])


# -- arguments ---------------------------------------------------------------------------------


def _order(
    order_id: str,
    quantity: int = 1,
    colour: Colour = Colour.RED,
    address: Address | None = None,
    tags: tuple[str, ...] = (),
    weight: float = 0.0,
    deliver_on: date | None = None,
    customer: Customer | None = None,
) -> None:
    """Order something."""


ORDER = tool_spec(tool(_order))


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"order_id": "A1"}', {"order_id": "A1"}),
        ('{"order_id": "A1", "quantity": 2.0}', {"order_id": "A1", "quantity": 2}),
        ('{"order_id": "A1", "colour": "green"}', {"order_id": "A1", "colour": Colour.GREEN}),
        (
            '{"order_id": "A1", "address": {"street": "1 Rue"}}',
            {"order_id": "A1", "address": Address("1 Rue")},
        ),
        ('{"order_id": "A1", "address": null}', {"order_id": "A1", "address": None}),
        ('{"order_id": "A1", "tags": ["x"]}', {"order_id": "A1", "tags": ("x",)}),
        ('{"order_id": "A1", "weight": 2}', {"order_id": "A1", "weight": 2.0}),
        ('{"order_id": "A1", "quantity": "3"}', {"order_id": "A1", "quantity": 3}),
        (
            '{"order_id": "A1", "deliver_on": "2026-12-24"}',
            {"order_id": "A1", "deliver_on": date(2026, 12, 24)},
        ),
        (
            '{"order_id": "A1", "customer": {"name": "Zoë", "email": "z@example.com"}}',
            {"order_id": "A1", "customer": Customer(name="Zoë", email="z@example.com")},
        ),
    ],
)
def test_arguments_are_converted(arguments: str, expected: dict[str, Any]) -> None:
    """Valid arguments become Python values: Enum members, dataclasses, models, dates, tuples."""
    converted = parse_arguments(ORDER, arguments)
    assert converted == expected
    assert [type(value) for value in converted.values()] == [
        type(value) for value in expected.values()
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{}", "'order_id': Field required"),
        ("", "'order_id': Field required"),
        ('{"order_id": 7}', "'order_id': Input should be a valid string"),
        ('{"order_id": "A1", "quantity": "many"}', "'quantity': Input should be a valid integer"),
        ('{"order_id": "A1", "quantity": 1.5}', "'quantity': Input should be a valid integer, got"),
        ('{"order_id": "A1", "colour": "blue"}', "'colour': Input should be 'red' or 'green'"),
        ('{"order_id": "A1", "address": {}}', "'address.street': Field required"),
        ('{"order_id": "A1", "address": 3}', "'address': Input should be an object"),
        ('{"order_id": "A1", "tags": [1]}', "'tags[0]': Input should be a valid string"),
        ('{"order_id": "A1", "size": 3}', "'size': Extra inputs are not permitted"),
        ('{"order_id": "A1", "weight": NaN}', "'weight': Input should be a finite number"),
        ('{"order_id": "A1", "deliver_on": "soon"}', "'deliver_on': Input should be a valid date"),
        ('{"order_id": "A1", "customer": {"name": "Zoë"}}', "'customer.email': Field required"),
        ("[]", "Input should be an object"),
        ("{order_id}", "Invalid JSON: key must be a string"),
        (
            '{"order_id": 1, "quantity": "x", "colour": "x", "size": 1}',
            "'order_id': Input should be a valid string; 'quantity': Input should be a valid "
            "integer, unable to parse string as an integer; 'colour': Input should be 'red' or "
            "'green'; and 1 more",
        ),
    ],
)
def test_bad_arguments_say_what_is_wrong(arguments: str, message: str) -> None:
    """Invalid arguments are a ValueError whose message the model can act on."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_arguments(ORDER, arguments)


# -- running -----------------------------------------------------------------------------------


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """A real thread pool for sync tools."""
    executor = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="tools")
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def _spec(function: Callable[..., Any], **options: Any) -> ToolSpec:
    return tool_spec(tool(**options)(function))


REQUEST = contextvars.ContextVar[str]("request", default="none")


def _sync_where(label: str) -> str:
    """Tell the thread and context it ran in."""
    return f"{label} {threading.current_thread().name} {REQUEST.get()}"


async def test_sync_tool_runs_in_the_pool_with_the_callers_context(
    pool: concurrent.futures.Executor,
) -> None:
    """A sync tool runs in the given executor, seeing the caller's context variables."""
    REQUEST.set("call-1")
    result = await run_tool(_spec(_sync_where), '{"label": "hi"}', timeout=5, executor=pool)
    assert result.ok
    assert result.output.startswith('{"result": "hi tools')
    assert result.output.endswith(' call-1"}')
    assert result.error is None
    assert result.duration >= 0


async def _async_total(prices: list[float]) -> dict[str, float]:
    """Add prices."""
    return {"total": sum(prices)}


async def test_async_tool_is_awaited() -> None:
    """An async tool is awaited on the loop and its dict result sent as JSON."""
    result = await run_tool(_spec(_async_total), '{"prices": [1, 2.5]}', timeout=5)
    assert (result.ok, result.output) == (True, '{"total": 3.5}')


class Status(enum.Enum):
    OPEN = "open"


class Ticket(pydantic.BaseModel):
    id: int
    opened: date


@dataclass
class Receipt:
    status: Status
    at: datetime


@pytest.mark.parametrize(
    ("value", "output"),
    [
        ("shipped", '{"result": "shipped"}'),
        (None, "null"),
        (3, "3"),
        ([1, "a"], '[1, "a"]'),
        (True, "true"),
        (
            Receipt(Status.OPEN, datetime(2026, 1, 2, 3, 4)),
            '{"status": "open", "at": "2026-01-02T03:04:00"}',
        ),
        (Ticket(id=4, opened=date(2026, 1, 2)), '{"id": 4, "opened": "2026-01-02"}'),
        ({"name": "Zoë"}, '{"name": "Zoë"}'),
    ],
)
async def test_results_are_sent_as_json(
    value: object, output: str, pool: concurrent.futures.Executor
) -> None:
    """A str becomes {"result": ...}; other values, dataclasses and models become their JSON."""

    def returns() -> object:
        """Return the value."""
        return value

    result = await run_tool(_spec(returns), "{}", timeout=5, executor=pool)
    assert (result.ok, result.output) == (True, output)


@pytest.mark.parametrize("value", [{1, 2}, float("nan"), object()])
async def test_result_that_is_not_json_is_an_error(value: object) -> None:
    """A result JSON cannot hold becomes an error output, not an exception."""

    async def returns() -> object:
        """Return the value."""
        return value

    result = await run_tool(_spec(returns), "{}", timeout=5)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("the tool ran, but its result cannot be sent as JSON")


async def test_bad_arguments_become_an_error_output() -> None:
    """Arguments that fail the schema are the tool's error output; the tool does not run."""
    result = await run_tool(_spec(_async_total), '{"prices": "ten"}', timeout=5)
    assert not result.ok
    assert result.output == (
        '{"error": "invalid arguments: \'prices\': Input should be a valid array"}'
    )


def _raises(order_id: str) -> None:
    """Fail."""
    raise LookupError(f"no order {order_id}")


async def test_exception_becomes_an_error_output(
    pool: concurrent.futures.Executor, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising tool gives {"error": "<Type>: <message>"} and a logged traceback."""
    with caplog.at_level(logging.WARNING, logger="callcenter"):
        result = await run_tool(_spec(_raises), '{"order_id": "A1"}', timeout=5, executor=pool)
    assert (result.ok, result.error, result.timed_out) == (False, "LookupError: no order A1", False)
    assert result.output == '{"error": "LookupError: no order A1"}'
    [record] = caplog.records
    assert (record.getMessage(), record.tool) == ("tool raised", "_raises")
    assert record.exc_info is not None


async def test_tools_own_timeout_error_is_not_a_timeout() -> None:
    """A TimeoutError the tool raises itself is reported as its exception."""

    async def gives_up() -> None:
        """Give up."""
        raise TimeoutError("the CRM did not answer")

    result = await run_tool(_spec(gives_up), "{}", timeout=5)
    assert (result.error, result.timed_out) == ("TimeoutError: the CRM did not answer", False)


async def test_slow_async_tool_times_out() -> None:
    """An async tool past its timeout is cancelled and reported as timed out."""
    cancelled = asyncio.Event()

    async def slow() -> None:
        """Never finish."""
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    result = await run_tool(_spec(slow), "{}", timeout=0.05)
    assert (result.ok, result.output) == (False, '{"error": "the tool timed out after 0.05s"}')
    assert result.timed_out
    assert cancelled.is_set()
    assert result.duration >= 0.05


async def test_slow_sync_tool_times_out(pool: concurrent.futures.Executor) -> None:
    """A sync tool past its timeout is reported as timed out while its thread runs on."""
    release = threading.Event()

    def slow() -> str:
        """Block until released."""
        release.wait(10)
        return "late"

    try:
        result = await run_tool(_spec(slow), "{}", timeout=0.05, executor=pool)
    finally:
        release.set()
    assert (result.error, result.timed_out) == ("the tool timed out after 0.05s", True)


async def test_cancellation_propagates_to_an_async_tool() -> None:
    """Cancelling run_tool cancels the running async tool and raises CancelledError."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def waits() -> None:
        """Wait forever."""
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    task = asyncio.create_task(run_tool(_spec(waits), "{}", timeout=10))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


async def test_cancellation_propagates_while_a_sync_tool_runs(
    pool: concurrent.futures.Executor,
) -> None:
    """Cancelling run_tool while a sync tool runs raises CancelledError at once."""
    started, release = threading.Event(), threading.Event()

    def blocks() -> None:
        """Block until released."""
        started.set()
        release.wait(10)

    task = asyncio.create_task(run_tool(_spec(blocks), "{}", timeout=10, executor=pool))
    try:
        assert await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        release.set()


async def test_builtin_is_not_run() -> None:
    """A built-in has no function: run_tool answers with an error instead of raising."""
    result = await run_tool(BUILTIN_TOOLS["end_call"], '{"reason": "done"}', timeout=1)
    assert result.error == "end_call is carried out by the call, not run as a function"
