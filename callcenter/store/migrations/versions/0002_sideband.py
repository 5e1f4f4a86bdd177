"""Add what the sideband learns about a call: ticket, escalation trigger, summary, usage.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the ticket, escalation, summary and usage columns to calls."""
    op.add_column("calls", sa.Column("ticket", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("escalation_trigger", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("summary", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("input_tokens", sa.BigInteger(), nullable=True))
    op.add_column("calls", sa.Column("output_tokens", sa.BigInteger(), nullable=True))
    op.add_column("calls", sa.Column("usage", sa.JSON(), nullable=True))
    op.create_index("ix_calls_ticket", "calls", ["ticket"])


def downgrade() -> None:
    """Drop the columns added by upgrade."""
    op.drop_index("ix_calls_ticket", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        for column in (
            "usage",
            "output_tokens",
            "input_tokens",
            "summary",
            "escalation_trigger",
            "ticket",
        ):
            batch.drop_column(column)
