"""Add full-text search over transcript lines, filled from the lines already stored.

SQLite: an FTS5 table ``transcript_search`` (rowid = the line's ``call_events.id``) kept in
step by triggers on ``call_events``. PostgreSQL: a GIN index on the lines' ``to_tsvector``,
which PostgreSQL keeps in step itself. Both use no stemming: callers speak many languages.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_SQLITE_UP = (
    "CREATE VIRTUAL TABLE transcript_search USING fts5(text, call_id UNINDEXED)",
    """CREATE TRIGGER transcript_search_insert AFTER INSERT ON call_events
       WHEN new.kind = 'transcript'
       BEGIN
         INSERT INTO transcript_search (rowid, text, call_id)
         VALUES (new.id, coalesce(json_extract(new.data, '$.text'), ''), new.call_id);
       END""",
    """CREATE TRIGGER transcript_search_delete AFTER DELETE ON call_events
       WHEN old.kind = 'transcript'
       BEGIN
         DELETE FROM transcript_search WHERE rowid = old.id;
       END""",
    """INSERT INTO transcript_search (rowid, text, call_id)
       SELECT id, coalesce(json_extract(data, '$.text'), ''), call_id
       FROM call_events WHERE kind = 'transcript'""",
)
_SQLITE_DOWN = (
    "DROP TRIGGER transcript_search_delete",
    "DROP TRIGGER transcript_search_insert",
    "DROP TABLE transcript_search",
)
_POSTGRES_UP = (
    """CREATE INDEX ix_call_events_transcript_search ON call_events
       USING gin (to_tsvector('simple', coalesce(data ->> 'text', '')))
       WHERE kind = 'transcript'""",
)
_POSTGRES_DOWN = ("DROP INDEX ix_call_events_transcript_search",)


def upgrade() -> None:
    """Create the search table (SQLite) or index (PostgreSQL) and fill it."""
    for statement in _SQLITE_UP if op.get_bind().dialect.name == "sqlite" else _POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    """Drop what upgrade added."""
    for statement in _SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else _POSTGRES_DOWN:
        op.execute(statement)
