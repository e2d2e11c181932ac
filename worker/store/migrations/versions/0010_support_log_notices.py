"""PageUp's integrator duties: the log of failed PageUp calls, and notices to HR users.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pageup_errors",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(48), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("messages", sa.Text, nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("offer_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pageup_errors"),
    )
    op.create_index("ix_pageup_errors_at", "pageup_errors", ["at"])
    op.create_index("ix_pageup_errors_source", "pageup_errors", ["source"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("position", sa.String(120), nullable=True),
        sa.Column("start_date", sa.String(10), nullable=True),
        sa.Column("problem", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("repeat_key", sa.String(200), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
    )
    op.create_index("ix_notices_repeat_key", "notices", ["repeat_key"])
    op.create_index("ix_notices_created_at", "notices", ["created_at"])
    op.create_table(
        "notice_sends",
        sa.Column("notice_id", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("notice_id", "channel", name="pk_notice_sends"),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name="fk_notice_sends_notice_id"),
    )
    op.create_index("ix_notice_sends_sent_at", "notice_sends", ["sent_at"])
    op.create_table(
        "notice_channels",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_sent_at", WHEN, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("channel", name="pk_notice_channels"),
    )


def downgrade() -> None:
    op.drop_table("notice_channels")
    op.drop_index("ix_notice_sends_sent_at", "notice_sends")
    op.drop_table("notice_sends")
    op.drop_index("ix_notices_created_at", "notices")
    op.drop_index("ix_notices_repeat_key", "notices")
    op.drop_table("notices")
    op.drop_index("ix_pageup_errors_source", "pageup_errors")
    op.drop_index("ix_pageup_errors_at", "pageup_errors")
    op.drop_table("pageup_errors")
