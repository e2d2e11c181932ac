"""An index over the offers that could still be due, in each source's age order: a claim
reads each source's oldest due offers through it instead of ranking the whole table.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# As worker/store/tables.py OPEN_OFFER: literal constants, so that claims imply it.
OPEN_OFFER = sa.text(
    "parked_at IS NULL AND status != 'skipped' "
    "AND (status != 'processed' OR processed_at < listed_at)"
)


def upgrade() -> None:
    op.create_index(
        "ix_offers_open",
        "offers",
        ["source", "first_seen_at", "offer_id"],
        sqlite_where=OPEN_OFFER,
        postgresql_where=OPEN_OFFER,
    )


def downgrade() -> None:
    op.drop_index("ix_offers_open", "offers")
