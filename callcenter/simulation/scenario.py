"""Scenario files: one call described in TOML, validated into frozen values.

A scenario names the call to place (numbers, caller name, SIP headers, how its webhook is
delivered, a hang-up while it rings), the faults to arm for it, the caller's and the model's
steps (the emulator's script steps), calls to hold live while it rings, and what to expect.
Any problem raises :class:`~callcenter.errors.ConfigError` naming the file, line, key and
reason. The format is documented in ``docs/scenarios.md``; the expectations are checked by
:mod:`callcenter.simulation.checks`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from callcenter.call.vocabulary import CallOutcome, DecisionKind
from callcenter.config.reader import Section, load_toml, parse_toml, quoted, type_name
from callcenter.emulator import (
    Delivery,
    RestFault,
    SidebandFault,
    Step,
    TransferFault,
    fault_from_json,
    step_from_json,
)
from callcenter.emulator.faults import FAULT_KINDS, REST_VERBS, TRANSFER_RESULTS
from callcenter.emulator.script import STEP_TYPES
from callcenter.emulator.session_state import SERVER_TIMINGS

__all__ = [
    "DECISIONS",
    "OUTCOMES",
    "AcceptedExpectation",
    "CallSpec",
    "Expectations",
    "Hold",
    "Scenario",
    "ToolOutputExpectation",
    "load_scenario",
    "parse_scenario",
    "scenario_files",
]

T = TypeVar("T")
Fault = RestFault | SidebandFault | TransferFault
DECISIONS = tuple(DecisionKind)
# How OpenAI saw the call end (the emulator's view): not the controller's CallOutcome.
OUTCOMES = (
    "accepted",
    "rejected",
    "referred",
    "caller_hung_up",
    "controller_hung_up",
    "caller_hung_up_while_ringing",
    "rang_out",
)
DEFAULT_TIMEOUT = 20.0
DEFAULT_CALLER = "+14155550123"


@dataclass(frozen=True)
class CallSpec:
    """The call to place: numbers, caller name, extra SIP headers, delivery, early hang-up."""

    to_number: str
    from_number: str = DEFAULT_CALLER
    caller_name: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    hang_up_while_ringing_after: float | None = None
    delivery: Delivery = field(default_factory=Delivery)
    server_timings: str | None = None  # "realistic" | "none"; None: the emulator's own


@dataclass(frozen=True)
class Hold:
    """``calls`` calls placed first and kept live (waiting) while the scenario's call rings."""

    calls: int
    to_number: str
    from_number: str = DEFAULT_CALLER


@dataclass(frozen=True)
class AcceptedExpectation:
    """The call was accepted, with these session settings where given."""

    model: str | None = None
    voice: str | None = None
    instructions_contains: str | None = None


@dataclass(frozen=True)
class ToolOutputExpectation:
    """The controller sent a ``function_call_output`` for ``tool`` containing ``text``."""

    tool: str
    text: str


@dataclass(frozen=True)
class Expectations:
    """What should happen to the call; None or empty means "not checked"."""

    decision: str | None = None
    route: str | None = None
    controller_outcome: str | None = None
    outcome: str | None = None
    accepted: AcceptedExpectation | None = None
    rejected: int | None = None
    referred_to: str | None = None
    hung_up_by: str | None = None
    said_contains: tuple[str, ...] = ()
    tool_output_contains: tuple[ToolOutputExpectation, ...] = ()
    summary_contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """One validated scenario file."""

    name: str
    file: str
    call: CallSpec
    steps: tuple[Step, ...] = ()
    fault_templates: tuple[Fault, ...] = ()
    hold: Hold | None = None
    expect: Expectations = field(default_factory=Expectations)
    timeout: float = DEFAULT_TIMEOUT

    def faults_for(self, call_id: str) -> list[Fault]:
        """Fresh copies of this scenario's faults, for ``call_id`` only."""
        return [dataclasses.replace(template, call_id=call_id) for template in self.fault_templates]


# -- reading files -----------------------------------------------------------------------------


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, with each directory replaced by its ``*.toml`` files in name order."""
    found: list[Path] = []
    for path in map(Path, paths):
        found.extend(sorted(path.glob("*.toml")) if path.is_dir() else [path])
    return found


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario file at ``path``."""
    return _scenario(load_toml(path))


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Validate the TOML document ``text``; ``file`` names it in errors."""
    return _scenario(parse_toml(text, file))


def _scenario(root: Section) -> Scenario:
    root.check_keys(("name", "timeout", "call", "hold", "faults", "steps", "expect"))
    call = root.table("call")
    if call is None:
        raise root.error("call", "required: the [call] table names at least the dialled number")
    hold = root.table("hold")
    file = root.context.file
    return Scenario(
        name=root.text("name") or Path(file).stem,
        file=file,
        call=_call(call),
        steps=tuple(_step(section) for section in root.tables("steps")),
        fault_templates=tuple(_fault(section) for section in root.tables("faults")),
        hold=_hold(hold) if hold else None,
        expect=_expect(root.table_or_empty("expect")),
        timeout=root.positive_number("timeout") or DEFAULT_TIMEOUT,
    )


def _call(section: Section) -> CallSpec:
    keys = (
        "from",
        "to",
        "caller_name",
        "headers",
        "hang_up_while_ringing_after",
        "delivery",
        "server_timings",
    )
    section.check_keys(keys)
    timings = section.text("server_timings")
    if timings is not None and timings not in SERVER_TIMINGS:
        choices = " or ".join(quoted(choice) for choice in SERVER_TIMINGS)
        raise section.error("server_timings", f"must be {choices}, not {quoted(timings)}")
    headers = section.table_or_empty("headers")
    for name in headers.data:
        headers.required_text(name)
    delivery = section.table("delivery")
    return CallSpec(
        to_number=section.required_text("to"),
        from_number=section.text_or("from", DEFAULT_CALLER),
        caller_name=section.text("caller_name"),
        headers=tuple((name, str(value)) for name, value in headers.data.items()),
        hang_up_while_ringing_after=section.positive_number("hang_up_while_ringing_after"),
        delivery=_typed(Delivery, delivery) if delivery else Delivery(),
        server_timings=timings,
    )


def _hold(section: Section) -> Hold:
    section.check_keys(("calls", "to", "from"))
    return Hold(
        calls=section.positive_int("calls", 1),
        to_number=section.required_text("to"),
        from_number=section.text_or("from", DEFAULT_CALLER),
    )


def _step(section: Section) -> Step:
    kind = section.required_text("type")
    cls = STEP_TYPES.get(kind)
    if cls is None:
        known = ", ".join(STEP_TYPES)
        raise section.error("type", f"unknown step type {quoted(kind)}; known: {known}")
    section.check_keys(("type", *(spec.name for spec in dataclasses.fields(cls))))
    _require_fields(section, cls)
    try:
        step = step_from_json(section.data, "")
    except ValueError as error:
        raise section.error(None, str(error).removeprefix(": ")) from None
    _check_types(section, step)
    return step


def _fault(section: Section) -> Fault:
    kind = section.required_text("kind")
    cls = FAULT_KINDS.get(kind)
    if cls is None:
        raise section.error("kind", f"expected one of {', '.join(map(quoted, FAULT_KINDS))}")
    fields = [f.name for f in dataclasses.fields(cls) if f.name != "call_id"]
    section.check_keys(("kind", *fields))
    if cls is RestFault:
        _choice(section, "verb", sorted(REST_VERBS))
    if cls is TransferFault:
        _choice(section, "result", TRANSFER_RESULTS)
    data = dict(section.data)
    if cls is RestFault and "latency" in data and "status" not in data:
        data["status"] = None  # a latency alone only slows the answer down
    try:
        fault = fault_from_json(data)
    except ValueError as error:
        raise section.error(None, str(error)) from None
    _check_types(section, fault)
    return fault


def _expect(section: Section) -> Expectations:
    names = [f.name for f in dataclasses.fields(Expectations)]
    section.check_keys(names)
    accepted = section.table("accepted")
    rejected = section.data.get("rejected")
    if rejected is not None and (type(rejected) is not int or not 400 <= rejected <= 699):
        raise section.error("rejected", f"expected a SIP status code 400-699, got {rejected!r}")
    return Expectations(
        decision=_choice(section, "decision", DECISIONS),
        route=section.text("route"),
        controller_outcome=_choice(section, "controller_outcome", tuple(CallOutcome)),
        outcome=_choice(section, "outcome", OUTCOMES),
        accepted=_typed(AcceptedExpectation, accepted) if accepted else None,
        rejected=rejected,
        referred_to=section.text("referred_to"),
        hung_up_by=_choice(section, "hung_up_by", ("caller", "controller")),
        said_contains=section.texts("said_contains", single=True),
        tool_output_contains=_tool_outputs(section),
        summary_contains=section.texts("summary_contains", single=True),
    )


def _tool_outputs(section: Section) -> tuple[ToolOutputExpectation, ...]:
    """One table (``tool_output_contains = {tool, text}``) or an array of them."""
    key = "tool_output_contains"
    one = isinstance(section.data.get(key), dict)
    tables = [section.table_or_empty(key)] if one else section.tables(key)
    return tuple(_typed(ToolOutputExpectation, table) for table in tables)


def _choice(section: Section, key: str, allowed: Sequence[str]) -> str | None:
    value = section.text(key)
    if value is not None and value not in allowed:
        raise section.error(key, f"expected one of {', '.join(allowed)}; got {quoted(value)}")
    return value


def _typed(cls: type[T], section: Section) -> T:
    """An instance of the dataclass ``cls`` from a table with its field names as keys."""
    section.check_keys([f.name for f in dataclasses.fields(cls)])  # type: ignore[arg-type]
    _require_fields(section, cls)
    value = cls(**section.data)
    _check_types(section, value)
    return value


def _require_fields(section: Section, cls: type[Any]) -> None:
    for spec in dataclasses.fields(cls):
        required = spec.default is spec.default_factory is dataclasses.MISSING
        if required and spec.name not in section.data:
            raise section.error(spec.name, "required")


def _check_types(section: Section, value: Any) -> None:
    """Refuse a field of the dataclass ``value`` whose type its annotation does not allow."""
    hints = typing.get_type_hints(type(value))
    for written in section.data:
        if written in hints:
            expected = _expected(getattr(value, written), hints[written])
            if expected is not None:
                written_value = section.data[written]
                if expected.startswith("one of") and isinstance(written_value, str):
                    got = quoted(written_value)
                else:
                    got = type_name(written_value)
                raise section.error(written, f"expected {expected}, got {got}")


def _expected(value: Any, hint: Any) -> str | None:
    """What ``hint`` asks for, in words, if ``value`` is not that; None if it is."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        wanted = [_expected(value, arg) for arg in args if arg is not type(None)]
        return None if None in wanted or value is None else " or ".join(filter(None, wanted))
    if origin is Literal:
        return None if value in args else "one of " + ", ".join(quoted(str(a)) for a in args)
    if hint is Any:
        return None
    if origin is not None:  # Mapping[str, Any] (arguments); tuples are built by the emulator
        return None if isinstance(value, origin) else "a table"
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "a number"
    if hint is int:
        return None if type(value) is int else "an integer"
    words = {str: "a string", bool: "true or false"}
    return None if isinstance(value, hint) else words.get(hint, hint.__name__)
