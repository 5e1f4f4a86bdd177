"""Add login_failures: failed operator logins, counted across workers and nodes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create login_failures."""
    op.create_table(
        "login_failures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_client_at", "login_failures", ["client", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    """Drop the table added by upgrade."""
    op.drop_table("login_failures")
