"""Validate parsed TOML into the frozen :class:`~callcenter.config.loader.Config`.

Every check raises :class:`~callcenter.errors.ConfigError` with the file, line, key path and
reason. Targets are read first so that actions anywhere can resolve their names.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import re
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.analysis.config import analysis
from callcenter.config.calls import DTMF_KEYS, dtmf_map, mcp_servers
from callcenter.config.catalog import announced_shutdowns
from callcenter.config.model import (
    DEFAULT_ANSWER_TIMEOUT,
    ON_TRANSFER_FAILED,
    AcceptAction,
    Config,
    Escalation,
    HeaderPattern,
    Hours,
    Limits,
    Match,
    OnTransferFailed,
    OpenAISettings,
    OpenWindow,
    Operators,
    ReferAction,
    RejectAction,
    Route,
    RouteAction,
    Screening,
    Target,
)
from callcenter.config.reader import Section, quoted, type_name
from callcenter.config.schedule import parse_open
from callcenter.config.session import session_table
from callcenter.notify.config import endpoints as notify_endpoints
from callcenter.sip.invite import SipParseError, is_transfer_uri, normalise_number, parse_uri

__all__ = ["VOICES", "build_config"]

logger = logging.getLogger(__name__)

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TOOL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!%*_+`'~.-]+")
_URI_SCHEMES = ("tel:", "sip:", "sips:")
_SEPARATORS = str.maketrans("", "", "-.() \t")
_NUMBER_GLOB_RE = re.compile(r"\+?[0-9*#?]+")
_ROUTE_KEYS = (
    "name match action instructions greeting handoff model voice tools hours escalation dtmf mcp "
    "on_transfer_failed analysis session"
)
_CONFIG_DEFAULTS: dict[str, object] = {f.name: f.default for f in dataclasses.fields(Config)}
_ESCALATION_KEYS = "target phrases dtmf max_tool_failures max_silences max_minutes max_errors"


def build_config(root: Section, today: date | None = None) -> Config:
    """Validate the document whose root table is ``root`` into a Config.

    A model whose announced shutdown is before ``today`` (default: the local date) is an
    error; one still ahead is a warning.
    """
    root.check_keys(
        (
            "tool_modules",
            "tool_timeout",
            "slow_tool_notice",
            "default_route",
            "openai",
            "limits",
            "screening",
            "operators",
            "targets",
            "routes",
            "notify",
        )
    )
    targets = _targets(root.tables("targets"))
    uris = {name: target.uri for name, target in targets.items()}
    openai = _openai(root.table_or_empty("openai"))
    limits = _limits(root.table_or_empty("limits"), uris)
    screening = _screening(root.table_or_empty("screening"), uris)
    routes = tuple(_route(section, uris) for section in root.tables("routes"))
    if not routes:
        raise root.error("routes", "at least one [[routes]] table is required")
    _check_unique(root, "routes", [route.name for route in routes])
    default_route = root.text("default_route")
    if default_route is not None and default_route not in {route.name for route in routes}:
        raise root.error("default_route", f"no route named {quoted(default_route)}")
    tool_modules = root.texts("tool_modules")
    for index, module in enumerate(tool_modules):
        if not _MODULE_RE.fullmatch(module):
            raise root.context.error(
                ("tool_modules", index), f"{quoted(module)} is not a module name"
            )
    config = Config(
        path=root.context.file,
        openai=openai,
        limits=limits,
        screening=screening,
        targets=MappingProxyType(targets),
        routes=routes,
        default_route=default_route,
        tool_modules=tool_modules,
        tool_timeout=_positive_or_default(root, "tool_timeout"),
        slow_tool_notice=_positive_or_default(root, "slow_tool_notice"),
        operators=_operators(root.table_or_empty("operators")),
        notify=notify_endpoints(root, tuple(route.name for route in routes)),
    )
    _check_shutdowns(root, config, today or date.today())
    return config


def _check_shutdowns(root: Section, config: Config, today: date) -> None:
    shutdowns = announced_shutdowns()
    written: list[tuple[tuple[str | int, ...], str]] = [(("openai", "model"), config.openai.model)]
    written += [(("routes", i, "model"), r.model) for i, r in enumerate(config.routes) if r.model]
    for path, model in written:
        shutdown = shutdowns.get(model)
        if shutdown is None:
            continue
        if shutdown <= today:
            reason = (
                f"{quoted(model)} was shut down on {shutdown.isoformat()}; choose another model"
            )
            raise root.context.error(path, reason)
        logger.warning(
            "model has an announced shutdown; plan a move to another model",
            extra={"model": model, "shutdown": shutdown.isoformat()},
        )


def _positive_or_default(section: Section, key: str) -> float:
    """A positive number of seconds, the Config default when absent."""
    value = section.positive_number(key)
    if value is not None:
        return value
    default = _CONFIG_DEFAULTS[key]
    assert isinstance(default, float)
    return default


def _operators(section: Section) -> Operators:
    section.check_keys(("allow_uri_targets",))
    return Operators(allow_uri_targets=section.boolean("allow_uri_targets", False))


def _openai(section: Section) -> OpenAISettings:
    section.check_keys(("model", "voice", "transcription_model", "session"))
    defaults = OpenAISettings()
    return OpenAISettings(
        model=section.text_or("model", defaults.model),
        voice=_voice(section, "voice") or defaults.voice,
        transcription_model=section.text_or("transcription_model", defaults.transcription_model),
        session=session_table(section),
    )


def _voice(section: Section, key: str) -> str | None:
    voice = section.text(key)
    if voice is not None and voice not in VOICES:
        raise section.error(
            key, f"unknown voice {quoted(voice)}; expected one of {', '.join(VOICES)}"
        )
    return voice


def _limits(section: Section, targets: Mapping[str, str]) -> Limits:
    section.check_keys(("max_concurrent_calls", "when_full"))
    defaults = Limits()
    return Limits(
        max_concurrent_calls=section.positive_int(
            "max_concurrent_calls", defaults.max_concurrent_calls
        ),
        when_full=_reject_or_refer(section, "when_full", targets, defaults.when_full),
    )


def _screening(section: Section, targets: Mapping[str, str]) -> Screening:
    section.check_keys(("deny", "allow", "deny_action"))
    return Screening(
        deny=_number_patterns(section, "deny", single=False),
        allow=_number_patterns(section, "allow", single=False),
        deny_action=_reject_or_refer(section, "deny_action", targets, RejectAction(603)),
    )


def _targets(sections: list[Section]) -> dict[str, Target]:
    names = [_name(section) for section in sections]
    targets: dict[str, Target] = {}
    for section, name in zip(sections, names, strict=True):
        section.check_keys(("name", "uri", "fallback", "ticket_header", "answer_timeout"))
        if name in targets:
            raise section.error("name", f"duplicate target name {quoted(name)}")
        uri = section.required_text("uri")
        _check_uri(section, "uri", uri)
        fallback = section.text("fallback")
        if fallback is not None:
            if fallback == name:
                raise section.error("fallback", "a target cannot be its own fallback")
            if fallback not in names:
                _check_uri(section, "fallback", fallback, or_target_name=True)
        ticket_header = section.boolean("ticket_header", False)
        if ticket_header and parse_uri(uri).scheme == "tel":
            raise section.error("ticket_header", "only sip: and sips: targets can carry a header")
        answer_timeout = section.positive_number("answer_timeout") or DEFAULT_ANSWER_TIMEOUT
        targets[name] = Target(name, uri, fallback, ticket_header, answer_timeout)
    for section, name in zip(sections, names, strict=True):
        _check_fallback_chain(section, name, targets)
    return targets


def _check_fallback_chain(section: Section, name: str, targets: Mapping[str, Target]) -> None:
    chain = [name]
    fallback = targets[name].fallback
    while fallback is not None and fallback in targets:
        if fallback in chain:
            loop = " -> ".join([*chain, fallback])
            raise section.error("fallback", f"fallbacks go round in a loop: {loop}")
        chain.append(fallback)
        fallback = targets[fallback].fallback


def _route(section: Section, targets: Mapping[str, str]) -> Route:
    section.check_keys(_ROUTE_KEYS.split())
    name = _name(section)
    action_text = section.text_or("action", "accept")
    action: RouteAction = (
        AcceptAction()
        if action_text == "accept"
        else _parse_action(section, "action", action_text, targets, or_accept=True)
    )
    instructions = section.text("instructions")
    if isinstance(action, AcceptAction) and instructions is None:
        raise section.error("instructions", "required for a route that accepts calls")
    tools = section.texts("tools")
    for index, tool in enumerate(tools):
        if not _TOOL_RE.fullmatch(tool):
            raise section.context.error(
                (*section.path, "tools", index), f"{quoted(tool)} is not a tool name"
            )
    _check_unique(section, "tools", list(tools))
    match = section.table("match")
    hours = section.table("hours")
    escalation_table = section.table("escalation")
    escalation = _escalation(escalation_table, targets) if escalation_table else None
    dtmf = section.table("dtmf")
    analysis_table = section.table("analysis")
    return Route(
        name=name,
        match=_match(match) if match else None,
        action=action,
        instructions=instructions,
        greeting=section.text("greeting"),
        handoff=section.text("handoff"),
        model=section.text("model"),
        voice=_voice(section, "voice"),
        tools=tools,
        hours=_hours(hours, targets) if hours else None,
        escalation=escalation,
        dtmf=MappingProxyType(dtmf_map(dtmf, targets, escalation) if dtmf else {}),
        mcp=mcp_servers(section),
        on_transfer_failed=_on_transfer_failed(section),
        analysis=analysis(analysis_table) if analysis_table else None,
        session=session_table(section),
    )


def _on_transfer_failed(section: Section) -> OnTransferFailed:
    value = section.text_or("on_transfer_failed", "resume")
    for choice in ON_TRANSFER_FAILED:
        if value == choice:
            return choice
    allowed = " or ".join(quoted(c) for c in ON_TRANSFER_FAILED)
    raise section.error("on_transfer_failed", f"expected {allowed}, got {quoted(value)}")


def _match(section: Section) -> Match:
    section.check_keys(("to", "from", "headers"))
    headers = section.table("headers")
    return Match(
        to=_number_patterns(section, "to", single=True),
        from_=_number_patterns(section, "from", single=True),
        headers=_header_patterns(headers) if headers else (),
    )


def _header_patterns(headers: Section) -> tuple[HeaderPattern, ...]:
    patterns: list[HeaderPattern] = []
    for header, pattern in headers.data.items():
        if not _HEADER_NAME_RE.fullmatch(header):
            raise headers.error(header, f"{quoted(header)} is not a SIP header name")
        if not isinstance(pattern, str):
            raise headers.error(header, f"expected a string pattern, got {type_name(pattern)}")
        regex = pattern[3:] if pattern.startswith("re:") else fnmatch.translate(pattern)
        try:
            compiled = re.compile(regex, re.IGNORECASE)
        except re.error as error:
            raise headers.error(header, f"bad regular expression: {error}") from None
        patterns.append(HeaderPattern(header, pattern, compiled))
    return tuple(patterns)


def _number_patterns(section: Section, key: str, *, single: bool) -> tuple[str, ...]:
    """Globs on normalised numbers: separators go, so ``+1 (415) *`` means ``+1415*``."""
    return tuple(_normalise_pattern(pattern) for pattern in section.texts(key, single=single))


def _normalise_pattern(pattern: str) -> str:
    stripped = pattern.translate(_SEPARATORS)
    if "[" not in pattern and _NUMBER_GLOB_RE.fullmatch(stripped):
        return stripped
    return normalise_number(pattern)


def _hours(section: Section, targets: Mapping[str, str]) -> Hours:
    section.check_keys(("timezone", "open", "closed", "closed_dates"))
    timezone = section.required_text("timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise section.error("timezone", f"unknown time zone {quoted(timezone)}") from None
    if not section.has("open"):
        raise section.error("open", 'required, e.g. "mon-fri 09:00-17:00"')
    windows: list[OpenWindow] = []
    in_array = isinstance(section.data["open"], list)
    for index, spec in enumerate(section.texts("open", single=True)):
        try:
            windows.extend(parse_open(spec))
        except ValueError as error:
            path = (*section.path, "open", index) if in_array else (*section.path, "open")
            raise section.context.error(path, str(error)) from None
    return Hours(
        timezone=timezone,
        windows=tuple(windows),
        closed=_reject_or_refer(section, "closed", targets, RejectAction(480)),
        closed_dates=_dates(section, "closed_dates"),
    )


def _dates(section: Section, key: str) -> frozenset[date]:
    value = section.data.get(key, [])
    if not isinstance(value, list):
        raise section.error(key, f"expected an array of dates, got {type_name(value)}")
    dates: set[date] = set()
    for index, item in enumerate(value):
        path = (*section.path, key, index)
        if isinstance(item, date) and not isinstance(item, datetime):
            dates.add(item)
        elif isinstance(item, str):
            try:
                dates.add(date.fromisoformat(item))
            except ValueError:
                raise section.context.error(
                    path, f"{quoted(item)} is not a date (YYYY-MM-DD)"
                ) from None
        else:
            raise section.context.error(path, f"expected a date, got {type_name(item)}")
    return frozenset(dates)


def _escalation(section: Section, targets: Mapping[str, str]) -> Escalation:
    section.check_keys(_ESCALATION_KEYS.split())
    target = section.required_text("target")
    if target not in targets:
        raise section.error("target", f"no target named {quoted(target)}")
    dtmf = section.text("dtmf")
    if dtmf is not None and (len(dtmf) != 1 or dtmf.upper() not in DTMF_KEYS):
        raise section.error("dtmf", f"expected one keypad key (0-9, *, #, A-D), got {quoted(dtmf)}")
    defaults = Escalation(target)
    return Escalation(
        target=target,
        phrases=section.texts("phrases"),
        dtmf=dtmf.upper() if dtmf else None,
        max_tool_failures=section.positive_int("max_tool_failures", defaults.max_tool_failures),
        max_silences=section.positive_int("max_silences", defaults.max_silences),
        max_minutes=section.positive_number("max_minutes"),
        max_errors=section.positive_int("max_errors", defaults.max_errors),
    )


def _reject_or_refer(
    section: Section, key: str, targets: Mapping[str, str], default: RejectAction | ReferAction
) -> RejectAction | ReferAction:
    text = section.text(key)
    return default if text is None else _parse_action(section, key, text, targets, or_accept=False)


def _parse_action(
    section: Section, key: str, text: str, targets: Mapping[str, str], *, or_accept: bool
) -> RejectAction | ReferAction:
    """Parse ``reject:<400-699>`` | ``refer:<target name or URI>``."""
    verb, colon, argument = text.partition(":")
    if verb == "reject" and colon:
        if not (argument.isascii() and argument.isdigit() and 400 <= int(argument) <= 699):
            raise section.error(
                key, f"{quoted(text)}: the status code must be a number from 400 to 699"
            )
        return RejectAction(int(argument))
    if verb == "refer" and colon:
        if argument in targets:
            return ReferAction(argument, targets[argument])
        _check_uri(section, key, argument, or_target_name=True)
        return ReferAction(argument, argument)
    forms = ('"accept", ' if or_accept else "") + '"reject:<400-699>" or "refer:<target>"'
    raise section.error(key, f"expected {forms}, got {quoted(text)}")


def _check_uri(section: Section, key: str, uri: str, *, or_target_name: bool = False) -> None:
    if or_target_name and not uri.lower().startswith(_URI_SCHEMES):
        raise section.error(key, f"no target named {quoted(uri)}")
    try:
        parse_uri(uri)
    except SipParseError as error:
        raise section.error(key, f"bad URI: {error}") from None
    if not is_transfer_uri(uri):
        raise section.error(
            key, f"bad URI {quoted(uri)}: a local tel: number needs a phone-context"
        )


def _name(section: Section) -> str:
    name = section.required_text("name")
    if not _NAME_RE.fullmatch(name):
        reason = "use letters, digits, '-', '_' and '.', starting with a letter or digit"
        raise section.error("name", f"{quoted(name)}: {reason}")
    return name


def _check_unique(section: Section, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            path = (*section.path, key, index)
            raise section.context.error(
                (*path, "name") if key == "routes" else path, f"duplicate name {quoted(name)}"
            )
        seen.add(name)
