"""Create calls, webhook_events and call_events.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create calls, webhook_events and call_events."""
    op.create_table(
        "calls",
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("webhook_id", sa.Text(), nullable=False),
        sa.Column("received_at", _TIMESTAMP, nullable=False),
        sa.Column("caller_number", sa.Text(), nullable=True),
        sa.Column("caller_uri", sa.Text(), nullable=True),
        sa.Column("caller_name", sa.Text(), nullable=True),
        sa.Column("dialled_number", sa.Text(), nullable=True),
        sa.Column("dialled_uri", sa.Text(), nullable=True),
        sa.Column("sip_headers", sa.JSON(), nullable=False),
        sa.Column("media_security", sa.Text(), nullable=True),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("reject_code", sa.Integer(), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("claimed_at", _TIMESTAMP, nullable=False),
        sa.Column("decided_at", _TIMESTAMP, nullable=False),
        sa.Column("answered_at", _TIMESTAMP, nullable=True),
        sa.Column("ended_at", _TIMESTAMP, nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
    )
    op.create_index("ix_calls_status", "calls", ["status"])
    op.create_index("ix_calls_received_at", "calls", ["received_at"])
    op.create_index("ix_calls_route", "calls", ["route"])

    op.create_table(
        "webhook_events",
        sa.Column("webhook_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=True),
        sa.Column("received_at", _TIMESTAMP, nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name="pk_webhook_events"),
    )

    op.create_table(
        "call_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.call_id"], name="fk_call_events_call_id_calls"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_call_events"),
    )
    op.create_index("ix_call_events_call_id_id", "call_events", ["call_id", "id"])


def downgrade() -> None:
    """Drop every table of the store."""
    op.drop_table("call_events")
    op.drop_table("webhook_events")
    op.drop_table("calls")
