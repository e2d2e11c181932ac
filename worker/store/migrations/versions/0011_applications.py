"""The applications flow: each application's delivery per target, the jobs read, and who runs
each source's flow now.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("application_id", sa.String(64), nullable=False),
        sa.Column("job_key", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=True),
        sa.Column("sending_hash", sa.String(64), nullable=True),
        sa.Column("record_id", sa.String(128), nullable=True),
        sa.Column("mapping_version", sa.String(32), nullable=True),
        sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stage", sa.String(48), nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("first_seen_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.Column("removed_at", WHEN, nullable=True),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("parked_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("source", "target", "application_id", name="pk_applications"),
    )
    op.create_index("ix_applications_job_key", "applications", ["job_key"])
    op.create_table(
        "application_jobs",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("job_key", sa.String(80), nullable=False),
        sa.Column("listed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("invalid_entries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_listed_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("source", "job_key", name="pk_application_jobs"),
    )
    op.create_table(
        "application_runs",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("last_started_at", WHEN, nullable=True),
        sa.Column("last_finished_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("source", name="pk_application_runs"),
    )


def downgrade() -> None:
    op.drop_table("application_runs")
    op.drop_table("application_jobs")
    op.drop_index("ix_applications_job_key", "applications")
    op.drop_table("applications")
