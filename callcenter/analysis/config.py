"""A route's ``[routes.analysis]`` table, validated with the file, line and key of each error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from callcenter.config.reader import Section, quoted, type_name

__all__ = ["FIELD_TYPES", "Analysis", "analysis"]

# The types an ``extract`` field may have; a list of strings is an enum.
FIELD_TYPES = ("string", "boolean", "integer", "number")
_DEFAULT_MODEL = "gpt-5-mini"


@dataclass(frozen=True, slots=True)
class Analysis:
    """What to ask of a route's ended calls: a summary, a success judgement, fields."""

    model: str = _DEFAULT_MODEL
    summary: bool = True
    success: str | None = None  # the criterion, judged true or false with a reason
    # field name → one of FIELD_TYPES, or the tuple of allowed strings
    extract: Mapping[str, str | tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )


def analysis(section: Section) -> Analysis:
    """The ``[routes.analysis]`` table ``section``."""
    section.check_keys(("model", "summary", "success", "extract"))
    extract: dict[str, str | tuple[str, ...]] = {}
    table = section.table("extract")
    for name, kind in (table.data if table else {}).items():
        path = (*section.path, "extract", name)
        if isinstance(kind, str) and kind in FIELD_TYPES:
            extract[name] = kind
        elif isinstance(kind, list) and kind and all(isinstance(k, str) and k for k in kind):
            extract[name] = tuple(kind)
        else:
            shown = quoted(kind) if isinstance(kind, str) else type_name(kind)
            raise section.context.error(
                path,
                f"unknown type {shown}; expected one of {', '.join(FIELD_TYPES)} "
                "or an array of allowed strings",
            )
    return Analysis(
        model=section.text_or("model", _DEFAULT_MODEL),
        summary=section.boolean("summary", True),
        success=section.text("success"),
        extract=MappingProxyType(extract),
    )
