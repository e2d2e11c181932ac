"""Offer documents sent to targets: a row per document with its checksum, size and state.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offer_documents",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("offer_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("choice", sa.String(40), nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint(
            "source", "offer_id", "target", "document_id", name="pk_offer_documents"
        ),
    )
    op.create_index("ix_offer_documents_status", "offer_documents", ["status"])


def downgrade() -> None:
    op.drop_index("ix_offer_documents_status", "offer_documents")
    op.drop_table("offer_documents")
