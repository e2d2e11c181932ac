"""Every attempt of an offer, with its outcome, reason, map version and next try; and the
latest attempt's claimed, fetched and mapped times (the console's timeline).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Nullable columns only: SQLite adds them in place, without copying the table.
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("claimed_at", WHEN, nullable=True))
        batch.add_column(sa.Column("fetched_at", WHEN, nullable=True))
        batch.add_column(sa.Column("mapped_at", WHEN, nullable=True))
    op.create_table(
        "offer_attempts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("offer_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("started_at", WHEN, nullable=True),
        sa.Column("finished_at", WHEN, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(48), nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("record_id", sa.String(128), nullable=True),
        sa.Column("mapping_version", sa.String(32), nullable=True),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_offer_attempts"),
    )
    op.create_index("ix_offer_attempts_finished_at", "offer_attempts", ["finished_at"])
    op.create_index("ix_offer_attempts_offer", "offer_attempts", ["source", "offer_id", "target"])


def downgrade() -> None:
    op.drop_index("ix_offer_attempts_offer", "offer_attempts")
    op.drop_index("ix_offer_attempts_finished_at", "offer_attempts")
    op.drop_table("offer_attempts")
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("mapped_at")
        batch.drop_column("fetched_at")
        batch.drop_column("claimed_at")
