"""The Realtime models the installed openai SDK knows, and the shutdowns OpenAI announced.

The names come from the SDK's own type: ``CallAcceptParams.model`` is typed
``Union[str, Literal[...]]``, read with :func:`typing.get_type_hints`, so a newer SDK brings
newer names. Shutdown dates are not in any runtime object (the SDK has them only in a
docstring of its source), so they are kept here: :data:`ANNOUNCED_SHUTDOWNS`. A test
(``tests/test_catalog.py``) reads the installed SDK's source and fails when it announces a
shutdown this table lacks, so an SDK upgrade cannot silently drop a warning.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

__all__ = ["ANNOUNCED_SHUTDOWNS", "ModelCatalog", "announced_shutdowns", "sdk_model_catalog"]

_JAN_2027 = date(2027, 1, 20)

# Every model with an announced shutdown: the SDK's docstring of CallAcceptParams.model
# (openai 3.57) and OpenAI's deprecations page for those already gone.
ANNOUNCED_SHUTDOWNS: Mapping[str, date] = {
    "gpt-4o-realtime-preview-2024-10-01": date(2025, 9, 10),
    "gpt-realtime": _JAN_2027,
    "gpt-realtime-2025-08-28": _JAN_2027,
    "gpt-realtime-mini": _JAN_2027,
    "gpt-realtime-mini-2025-12-15": _JAN_2027,
    "gpt-audio-mini": _JAN_2027,
    "gpt-audio-mini-2025-12-15": _JAN_2027,
}


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """Model names the SDK lists, and the announced shutdown date of some of them."""

    known: frozenset[str]
    shutdowns: Mapping[str, date]


def sdk_model_catalog() -> ModelCatalog | None:
    """The names the installed SDK lists; None when its type no longer lists any."""
    from openai.types.realtime import CallAcceptParams

    try:
        annotation = typing.get_type_hints(CallAcceptParams)["model"]
    except (KeyError, NameError, TypeError):
        return None
    known = frozenset(_literal_strings(annotation))
    return ModelCatalog(known, ANNOUNCED_SHUTDOWNS) if known else None


def announced_shutdowns() -> Mapping[str, date]:
    """Every model with an announced shutdown and its date."""
    return ANNOUNCED_SHUTDOWNS


def _literal_strings(annotation: object) -> set[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return {arg for arg in typing.get_args(annotation) if isinstance(arg, str)}
    found: set[str] = set()
    for arg in typing.get_args(annotation):
        found |= _literal_strings(arg)
    return found
