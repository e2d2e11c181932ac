"""Retention of parked pushes: when an inbox body was purged, and an audit trail per item.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_inbox_parked_at", "inbox", ["parked_at"])
    op.create_table(
        "inbox_actions",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("inbox_id", sa.Integer, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_actions"),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"], name="fk_inbox_actions_inbox_id"),
    )
    op.create_index("ix_inbox_actions_inbox_id", "inbox_actions", ["inbox_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_actions_inbox_id", "inbox_actions")
    op.drop_table("inbox_actions")
    op.drop_index("ix_inbox_parked_at", "inbox")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("purged_at")
