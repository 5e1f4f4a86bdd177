"""Give call events a unique place, so that a recorder's replay never stores one twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add call_events.place and its unique index (rows without a place are not checked)."""
    op.add_column("call_events", sa.Column("place", sa.Text(), nullable=True))
    op.create_index("uq_call_events_place", "call_events", ["place"], unique=True)


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_index("uq_call_events_place", table_name="call_events")
    with op.batch_alter_table("call_events") as batch:
        batch.drop_column("place")
