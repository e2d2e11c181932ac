"""Several sources and targets: the ledger keyed by (source, offer, target).

An existing single-tenant database becomes one source named ``pageup`` and one target named
``hris`` (the names the single-source settings form ``pageup:`` + ``hris:`` is read as):
- each offer the HRIS had been sent (posting, posted, processed, or failed in its post) gets a
  ``offer_targets`` row for ``hris`` with its record id, idempotency key (the key it was sent
  with, kept, so that an unknown outcome is settled by the same key), hash and map version;
- the offer rows keep the offer-level state (listing, lease, mark), and are marked routed;
- steps, runs, manual actions and kept documents are renamed from tenant to source.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SOURCE, TARGET = "pageup", "hris"
# Offers the HRIS had been sent: their target row carries what the offer row held.
SENT = "status IN ('posting', 'posted', 'processed') OR (status = 'failed' AND stage LIKE 'post%')"


def upgrade() -> None:
    _create_offer_targets()
    _create_source_state()
    _create_workers()
    op.execute(
        sa.text(
            "INSERT INTO offer_targets (source, offer_id, target, status, stage, attempts, "  # noqa: S608
            "error_kind, last_error, http_status, record_id, idempotency_key, payload_hash, "
            "mapping_version, updated_at, posted_at, next_attempt_at, parked_at) "
            "SELECT :source, offer_id, :target, "
            "CASE WHEN status = 'processed' THEN 'posted' ELSE status END, stage, attempts, "
            "error_kind, last_error, http_status, hris_id, idempotency_key, payload_hash, "
            "mapping_version, updated_at, posted_at, next_attempt_at, parked_at "
            f"FROM offers WHERE {SENT}"
        ).bindparams(source=SOURCE, target=TARGET)
    )
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("application_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
        batch.alter_column("stage", type_=sa.String(48), existing_type=sa.String(32))
    op.execute(f"UPDATE offers SET routed_at = updated_at WHERE {SENT}")  # noqa: S608
    # The target row says "posting" now; the offer as a whole is in progress.
    op.execute("UPDATE offers SET status = 'pending' WHERE status = 'posting'")
    op.drop_index("ix_offers_status", "offers")
    with op.batch_alter_table("offers") as batch:
        for column in ("hris_id", "idempotency_key", "payload_hash", "mapping_version",
                       "posted_at"):  # fmt: skip
            batch.drop_column(column)
        batch.alter_column("tenant", new_column_name="source", existing_type=sa.String(64))
    op.create_index("ix_offers_status", "offers", ["status"])
    _steps_per_target()
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("tenant", new_column_name="source", existing_type=sa.String(64))
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("parked", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("invalid_entries", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("invalid_where", sa.Text, nullable=True))
    op.create_index("ix_runs_source", "runs", ["source"])
    with op.batch_alter_table("manual_actions") as batch:
        batch.alter_column("tenant", new_column_name="source", existing_type=sa.String(64))
        batch.add_column(sa.Column("target", sa.String(64), nullable=True))
    with op.batch_alter_table("source_documents") as batch:
        batch.alter_column("tenant", new_column_name="source", existing_type=sa.String(64))
    for table in ("offers", "runs", "manual_actions", "source_documents"):
        op.execute(sa.text(f"UPDATE {table} SET source = :source").bindparams(source=SOURCE))  # noqa: S608 (table names are ours)


def _steps_per_target() -> None:
    """offer_steps gains the target in its key: a new table, the rows copied, then renamed
    (changing a primary key in place is not portable)."""
    op.create_table(
        "offer_steps_v7",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("offer_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "offer_id", "target", "step", name="pk_offer_steps_v7"),
    )
    op.execute(
        sa.text(
            "INSERT INTO offer_steps_v7 (source, offer_id, target, step, status, record_id, "
            "idempotency_key, updated_at) SELECT :source, offer_id, :target, step, status, "
            "record_id, idempotency_key, updated_at FROM offer_steps"
        ).bindparams(source=SOURCE, target=TARGET)
    )
    op.drop_table("offer_steps")
    op.rename_table("offer_steps_v7", "offer_steps")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE offer_steps RENAME CONSTRAINT pk_offer_steps_v7 TO pk_offer_steps")


def _create_offer_targets() -> None:
    op.create_table(
        "offer_targets",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("offer_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(48), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("record_id", sa.String(128), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("payload_hash", sa.String(64), nullable=True),
        sa.Column("mapping_version", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", "offer_id", "target", name="pk_offer_targets"),
    )


def _create_workers() -> None:
    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name="pk_workers"),
    )


def _create_source_state() -> None:
    op.create_table(
        "source_state",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("halted", sa.Text, nullable=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", name="pk_source_state"),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger cannot go back to one tenant and one target")
