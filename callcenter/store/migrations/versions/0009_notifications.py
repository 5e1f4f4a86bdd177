"""Add the notification outbox (one row per event and receiver) and post-call analysis.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create notifications; add the analysis columns to calls."""
    op.add_column("calls", sa.Column("analysis", sa.JSON(), nullable=True))
    op.add_column("calls", sa.Column("analysis_status", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("analysis_until", _TIMESTAMP, nullable=True))
    op.add_column("calls", sa.Column("analysis_attempts", sa.Integer(), nullable=True))
    op.create_index("ix_calls_analysis_status", "calls", ["analysis_status"])
    op.create_table(
        "notifications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("dedupe", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", _TIMESTAMP, nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_until", _TIMESTAMP, nullable=True),
        sa.Column("last_answer", sa.Text(), nullable=True),
        sa.Column("delivered_at", _TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
    )
    op.create_index("uq_notifications_dedupe", "notifications", ["dedupe"], unique=True)
    op.create_index("ix_notifications_status_next_at", "notifications", ["status", "next_at"])
    op.create_index("ix_notifications_call_id", "notifications", ["call_id"])


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("notifications")
    op.drop_index("ix_calls_analysis_status", "calls")
    with op.batch_alter_table("calls") as batch:
        for column in ("analysis_attempts", "analysis_until", "analysis_status", "analysis"):
            batch.drop_column(column)
