"""Add the caller's wait to calls: time to greeting and each turn's wait (and tool part).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the latency column to calls."""
    op.add_column("calls", sa.Column("latency", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop the column added by upgrade."""
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("latency")
