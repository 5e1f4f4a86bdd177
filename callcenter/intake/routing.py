"""Decide what happens to a ringing call: accept it, reject it or refer it to a human.

A pure function of the call, the config, the time and the load; no I/O and no clock reads.
The order of the rules:

1. screening: a caller on the deny list, or missing from a non-empty allow list, gets
   ``screening.deny_action``;
2. the first route whose ``match`` holds (``to`` on the dialled number, ``from`` on the
   caller, ``headers`` on the SIP headers; every condition given must hold), else the
   ``default_route``, else 404;
3. the route's business hours: outside them (or on a closed date) ``hours.closed``;
4. the route's action, except that an accept at capacity becomes ``limits.when_full``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import ClassVar, Literal

from callcenter.call.vocabulary import DecisionKind
from callcenter.config.loader import Config, Match, ReferAction, RejectAction, Route
from callcenter.sip.invite import IncomingCall

__all__ = ["Accept", "Decision", "Refer", "Reject", "decide"]


@dataclass(frozen=True, slots=True)
class Accept:
    """Answer with the route's agent."""

    route: Route
    reason: str
    kind: ClassVar[Literal[DecisionKind.ACCEPT]] = DecisionKind.ACCEPT

    @property
    def route_name(self) -> str:
        """The name of the route that answers."""
        return self.route.name


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the call with a SIP status code; ``route`` is None when no route was reached."""

    status_code: int
    reason: str
    route: Route | None = None
    kind: ClassVar[Literal[DecisionKind.REJECT]] = DecisionKind.REJECT

    @property
    def route_name(self) -> str | None:
        """The name of the route that decided, if any."""
        return self.route.name if self.route else None


@dataclass(frozen=True, slots=True)
class Refer:
    """Transfer the call to ``target_uri`` (``target`` is the name or URI as configured).

    ``handoff`` is the line to say first, when the route has one.
    """

    target_uri: str
    target: str
    reason: str
    route: Route | None = None
    handoff: str | None = None
    kind: ClassVar[Literal[DecisionKind.REFER]] = DecisionKind.REFER

    @property
    def route_name(self) -> str | None:
        """The name of the route that decided, if any."""
        return self.route.name if self.route else None


Decision = Accept | Reject | Refer


def decide(call: IncomingCall, config: Config, now: datetime, active_calls: int) -> Decision:
    """Route ``call`` at time ``now`` (timezone-aware) with ``active_calls`` calls live."""
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    caller = call.caller_number
    screening = config.screening
    if _matches_any(caller, screening.deny):
        return _carry_out(screening.deny_action, f"caller {caller} is on the deny list")
    if screening.allow and not _matches_any(caller, screening.allow):
        reason = f"caller {caller or '(unknown)'} is not on the allow list"
        return _carry_out(screening.deny_action, reason)

    dialled = call.dialled_number or "(unknown)"
    route = next((r for r in config.routes if _route_matches(r.match, call)), None)
    if route is not None:
        why = f"call to {dialled} matches route {route.name}"
    elif config.default_route is not None:
        route = config.route(config.default_route)
        why = f"no route matches the call to {dialled}; default route {route.name}"
    else:
        return Reject(404, f"no route for {dialled}")

    hours = route.hours
    if hours is not None and not hours.is_open(now):
        reason = f"{route.name} is closed ({hours.timezone})"
        return _carry_out(hours.closed, reason, route, route.handoff)
    action = route.action
    if isinstance(action, RejectAction):
        return _carry_out(action, f"{why}, which rejects with {action.status_code}", route)
    if isinstance(action, ReferAction):
        reason = f"{why}, which refers to {action.target}"
        return _carry_out(action, reason, route, route.handoff)
    limits = config.limits
    if active_calls >= limits.max_concurrent_calls:
        reason = f"at capacity ({active_calls} active calls)"
        return _carry_out(limits.when_full, reason, route)
    return Accept(route, why)


def _carry_out(
    action: RejectAction | ReferAction,
    reason: str,
    route: Route | None = None,
    handoff: str | None = None,
) -> Reject | Refer:
    if isinstance(action, RejectAction):
        return Reject(action.status_code, reason, route)
    return Refer(action.uri, action.target, reason, route, handoff)


def _route_matches(match: Match | None, call: IncomingCall) -> bool:
    if match is None:
        return True
    if match.to and not _matches_any(call.dialled_number, match.to):
        return False
    if match.from_ and not _matches_any(call.caller_number, match.from_):
        return False
    return all(
        any(header.matches(value) for value in call.headers.get_all(header.name))
        for header in match.headers
    )


def _matches_any(number: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether a normalised number matches a glob; an unknown number matches none."""
    return number is not None and any(fnmatchcase(number, pattern) for pattern in patterns)
