"""The validated configuration as frozen values (re-exported by :mod:`callcenter.config.loader`).

Everything here is already checked: names resolve, URIs parse, patterns compile. The values
carry no I/O; ``Hours.is_open`` is the only behaviour besides look-ups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from callcenter.analysis.config import Analysis
from callcenter.call.mcp import McpServer
from callcenter.notify.config import Endpoint
from callcenter.sip.invite import is_transfer_uri

__all__ = [
    "DEFAULT_ANSWER_TIMEOUT",
    "ON_TRANSFER_FAILED",
    "AcceptAction",
    "RouteAction",
    "Config",
    "DtmfAction",
    "Escalation",
    "HeaderPattern",
    "Hours",
    "Limits",
    "Match",
    "OnTransferFailed",
    "OpenAISettings",
    "OpenWindow",
    "ReferAction",
    "RejectAction",
    "Route",
    "Screening",
    "Target",
]

_WEEK_SECONDS = 7 * 86400
DEFAULT_ANSWER_TIMEOUT = 30.0  # seconds a transferred call may stay with us before it failed
OnTransferFailed = Literal["resume", "hangup"]  # what a route does when every target failed
ON_TRANSFER_FAILED: tuple[OnTransferFailed, ...] = ("resume", "hangup")


@dataclass(frozen=True, slots=True)
class AcceptAction:
    """Answer the call with the route's voice agent."""

    kind: ClassVar[Literal["accept"]] = "accept"

    def __str__(self) -> str:
        return "accept"


@dataclass(frozen=True, slots=True)
class RejectAction:
    """Refuse the call with a SIP status code (400-699)."""

    status_code: int
    kind: ClassVar[Literal["reject"]] = "reject"

    def __str__(self) -> str:
        return f"reject:{self.status_code}"


@dataclass(frozen=True, slots=True)
class ReferAction:
    """Transfer the call; ``target`` is the target name or URI as written, ``uri`` resolved."""

    target: str
    uri: str
    kind: ClassVar[Literal["refer"]] = "refer"

    def __str__(self) -> str:
        return f"refer:{self.target}"


RouteAction = AcceptAction | RejectAction | ReferAction


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    """The session defaults every accepted call starts with."""

    model: str = "gpt-realtime-2"
    voice: str = "marin"
    transcription_model: str = "gpt-4o-mini-transcribe"
    # Session settings deep-merged over every accept body (config/session.py).
    session: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True, slots=True)
class Limits:
    """How many calls may be live at once, and what happens to the next one."""

    max_concurrent_calls: int = 200
    when_full: RejectAction | ReferAction = RejectAction(486)


@dataclass(frozen=True, slots=True)
class Operators:
    """What operators may do through the API, the console and the CLI."""

    allow_uri_targets: bool = False  # transfer to a typed tel:/sip: URI, not only a target


@dataclass(frozen=True, slots=True)
class Screening:
    """Caller-number patterns (normalised globs) checked before any route."""

    deny: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny_action: RejectAction | ReferAction = RejectAction(603)


@dataclass(frozen=True, slots=True)
class Target:
    """Where humans answer: a named ``tel:``/``sip:``/``sips:`` URI."""

    name: str
    uri: str
    fallback: str | None = None
    ticket_header: bool = False
    answer_timeout: float = DEFAULT_ANSWER_TIMEOUT  # s for a REFERred call to leave us


@dataclass(frozen=True, slots=True)
class HeaderPattern:
    """A SIP header (name case-insensitive) whose value must match ``pattern`` in full.

    ``pattern`` is as written: a case-insensitive glob, or ``re:<regex>`` (also
    case-insensitive); ``regex`` is its compiled form.
    """

    name: str
    pattern: str
    regex: re.Pattern[str]

    def matches(self, value: str) -> bool:
        """Whether one header value matches."""
        return self.regex.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions a call must all meet for a route to apply; ``to``/``from_`` are number globs."""

    to: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    headers: tuple[HeaderPattern, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """One weekly opening: ``weekday`` 0 is Monday; minutes after that day's local midnight.

    ``end`` exceeds 1440 when the window crosses midnight into the next day.
    """

    weekday: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Hours:
    """Business hours of a route, in its own time zone."""

    timezone: str
    windows: tuple[OpenWindow, ...]
    closed: RejectAction | ReferAction = RejectAction(480)
    closed_dates: frozenset[date] = frozenset()

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (timezone-aware) falls in an open window and not on a closed date."""
        local = now.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.closed_dates:
            return False
        second = local.weekday() * 86400 + local.hour * 3600 + local.minute * 60 + local.second
        for window in self.windows:
            start = window.weekday * 86400 + window.start * 60
            end = window.weekday * 86400 + window.end * 60
            if start <= second < end or start <= second + _WEEK_SECONDS < end:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Escalation:
    """When and where a live call goes to a human."""

    target: str
    phrases: tuple[str, ...] = ()
    dtmf: str | None = None
    max_tool_failures: int = 2
    max_silences: int = 3
    max_minutes: float | None = None
    max_errors: int = 3


@dataclass(frozen=True, slots=True)
class DtmfAction:
    """What a keypad key does during a call: ``escalate``, ``end``, or ``refer`` to a target.

    For ``refer``, ``target`` is the target name or URI as written and ``uri`` its URI.
    """

    kind: Literal["escalate", "refer", "end"]
    target: str | None = None
    uri: str | None = None

    def __str__(self) -> str:
        return f"refer:{self.target}" if self.kind == "refer" else self.kind


@dataclass(frozen=True, slots=True)
class Route:
    """A phone line: which calls it takes and what happens to them."""

    name: str
    match: Match | None
    action: RouteAction
    instructions: str | None = None
    greeting: str | None = None
    handoff: str | None = None
    model: str | None = None
    voice: str | None = None
    tools: tuple[str, ...] = ()
    hours: Hours | None = None
    escalation: Escalation | None = None
    dtmf: Mapping[str, DtmfAction] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    mcp: tuple[McpServer, ...] = field(default=(), hash=False)
    on_transfer_failed: OnTransferFailed = "resume"
    analysis: Analysis | None = field(default=None, hash=False)  # [routes.analysis]
    # Session settings deep-merged over [openai].session and the accept body.
    session: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def dtmf_action(self, key: str) -> DtmfAction | None:
        """What pressing ``key`` does: the route's DTMF map, then the escalation key."""
        action = self.dtmf.get(key)
        if action is None and self.escalation is not None and self.escalation.dtmf == key:
            return DtmfAction("escalate")
        return action


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration; ``path`` is the file it came from."""

    path: str
    openai: OpenAISettings
    limits: Limits
    screening: Screening
    targets: Mapping[str, Target]
    routes: tuple[Route, ...]
    default_route: str | None = None
    tool_modules: tuple[str, ...] = ()
    tool_timeout: float = 10.0  # seconds a tool may run unless it sets its own timeout
    slow_tool_notice: float = 2.0  # seconds of tool work before "one moment" is said
    operators: Operators = Operators()
    notify: tuple[Endpoint, ...] = ()  # [[notify]] receivers, secrets resolved at start-up

    def route(self, name: str) -> Route:
        """The route called ``name``; KeyError if there is none."""
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)

    def target_uri(self, name_or_uri: str) -> str:
        """Resolve a target name to its URI; a ``tel:``/``sip:``/``sips:`` URI passes through.

        Raises ValueError for anything else (e.g. an operator's typo).
        """
        target = self.targets.get(name_or_uri)
        if target is not None:
            return target.uri
        if is_transfer_uri(name_or_uri):
            return name_or_uri
        raise ValueError(f"no target named {name_or_uri!r} and not a tel:, sip: or sips: URI")

    def summary(self) -> str:
        """One line for the start-up log."""
        routes = ", ".join(route.name for route in self.routes)
        default = self.default_route or "none (404)"
        return (
            f"{self.path}: {len(self.routes)} routes ({routes}), {len(self.targets)} targets, "
            f"default route {default}, model {self.openai.model}, "
            f"max {self.limits.max_concurrent_calls} calls"
        )
