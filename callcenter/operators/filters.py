"""The call filters the API's ``GET /calls`` and the console's History share. Pure.

Both take ``status``, ``outcome`` (one of the vocabulary's words), ``route``, ``number``
(the caller's or the dialled one), ``ticket`` and ``text`` (words a transcript line holds);
each reads its own time bounds (the API ISO times with a zone, History days in the
operator's time zone) and hands them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from callcenter.call.vocabulary import CallOutcome, CallStatus
from callcenter.store.operators import CallFilter
from callcenter.store.search import words

__all__ = ["MAX_WORDS", "OUTCOMES", "STATUSES", "FilterError", "call_filter"]

STATUSES: Final = tuple(CallStatus)  # the values ?status= takes
OUTCOMES: Final = tuple(CallOutcome)  # the values ?outcome= takes
MAX_WORDS: Final = 16  # a longer text search is refused, not run


class FilterError(ValueError):
    """A filter cannot be used; the message is a fixed sentence fit to answer with."""


def call_filter(
    args: Mapping[str, str], *, since: datetime | None, until: datetime | None
) -> CallFilter:
    """The CallFilter of query ``args``; FilterError naming the first unusable one."""
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise FilterError(f"status must be one of {', '.join(STATUSES)}.")
    outcome = args.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise FilterError(f"outcome must be one of {', '.join(OUTCOMES)}.")
    found = tuple(words(args.get("text") or ""))
    if len(found) > MAX_WORDS:
        raise FilterError(f"text may hold at most {MAX_WORDS} words.")
    return CallFilter(
        status=status,
        route=args.get("route") or None,
        number=args.get("number") or None,
        since=since,
        until=until,
        outcome=outcome,
        ticket=args.get("ticket") or None,
        words=found,
    )
