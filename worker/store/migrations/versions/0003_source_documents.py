"""Source documents, kept only when database.keep_source_documents_days is set.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_documents",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("offer_id", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "offer_id", name="pk_source_documents"),
    )
    op.create_index("ix_source_documents_stored_at", "source_documents", ["stored_at"])


def downgrade() -> None:
    op.drop_index("ix_source_documents_stored_at", "source_documents")
    op.drop_table("source_documents")
