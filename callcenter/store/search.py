"""Full-text search in transcripts: which calls have a line with every word of a query.

SQLite matches in the FTS5 table ``transcript_search``, PostgreSQL with ``to_tsvector`` on
the GIN index of ``call_events`` (both from revision 0007, neither stems words). A query is
plain words, never the search engine's syntax: a call matches when one of its lines has
every word.
"""

from __future__ import annotations

import re
from typing import Any, Final

from sqlalchemy import Select, bindparam, column, select, table, text

from callcenter.store.schema import call_events

__all__ = ["SEARCH_OBJECTS", "calls_saying", "fts5_query", "words"]

# What revision 0007 adds beside the tables of schema.py (a schema comparison skips them).
SEARCH_OBJECTS: Final = frozenset({"transcript_search", "ix_call_events_transcript_search"})

_WORD: Final = re.compile(r"\w+", re.UNICODE)
_fts = table("transcript_search", column("rowid"), column("call_id"), column("text"))
# Written as the partial GIN index of revision 0007 is (its expression and its WHERE, as
# literals), so that the planner can use it whatever the plan's parameters.
_POSTGRES_MATCH: Final = text(
    "call_events.kind = 'transcript' AND "
    "to_tsvector('simple', coalesce(call_events.data ->> 'text', '')) "
    "@@ plainto_tsquery('simple', :words)"
)


def words(query: str) -> list[str]:
    """The words of a search query, lower-cased; punctuation and operators are dropped."""
    return [word.lower() for word in _WORD.findall(query)]


def fts5_query(found: list[str]) -> str:
    """An FTS5 MATCH expression requiring every word (each quoted: no FTS5 syntax leaks)."""
    return " ".join(f'"{word}"' for word in found)


def calls_saying(dialect: str, found: list[str]) -> Select[Any]:
    """The ids of the calls with a transcript line holding every word of ``found``."""
    if dialect == "sqlite":
        return select(_fts.c.call_id).where(
            text("transcript_search MATCH :match").bindparams(match=fts5_query(found))
        )
    return select(call_events.c.call_id).where(
        _POSTGRES_MATCH.bindparams(bindparam("words", " ".join(found))),
    )
