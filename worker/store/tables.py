"""The state store's tables. Only what is needed to resume: ids, status, hashes, errors.

No source document or payload is stored: they hold PII.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)

# One row per PageUp offer: how far it got, and why it stopped if it did.
offers = Table(
    "offers",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("stage", String(32), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("hris_id", String(128), nullable=True),
    Column("idempotency_key", String(128), nullable=True),
    Column("payload_hash", String(64), nullable=True),
    Column("mapping_version", String(32), nullable=True),
    Column("last_run_id", String(32), nullable=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=True),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    # Retries across runs: not tried again before this time.
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    # Parked (dead letter): not tried again until an admin says so.
    Column("parked_at", DateTime(timezone=True), nullable=True),
    # The worker processing the offer now, and until when its claim holds.
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
)

# Multi-step field maps: each step an offer has been sent through. A step that is "done" is
# never sent again; one left "posting" (outcome unknown) is resent with the same idempotency key.
offer_steps = Table(
    "offer_steps",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("step", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("record_id", String(128), nullable=True),
    Column("idempotency_key", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Pushes received (Apna leads, POP Engine notifications): stored before we answer 200, kept
# until the target accepted them. ``payload`` (PII) is cleared once delivered; ``dedup_key``
# recognises a repeated push (Apna's retry, the engine's re-notification).
inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("dedup_key", String(128), nullable=False),
    Column("payload", Text, nullable=True),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("repeats", Integer, nullable=False, default=0),
    Column("error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("target_id", String(128), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("parked_at", DateTime(timezone=True), nullable=True, index=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    # A parked item's payload deleted after inbound.parked_retention_days: it cannot be sent.
    Column("purged_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("source", "dedup_key", name="uq_inbox_source"),
)

# What was done to an inbox item, by whom (an admin, or "hirebridge" itself), when and why.
inbox_actions = Table(
    "inbox_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("inbox_id", Integer, ForeignKey("inbox.id"), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Job postings (issue 7): a source job, the ATS job it became, the hash of what was last sent.
jobs = Table(
    "jobs",
    metadata,
    Column("ats_source", String(64), primary_key=True),
    Column("source_id", String(128), primary_key=True),
    Column("ats_job_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("payload_hash", String(64), nullable=True),
    Column("mapping_version", String(32), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("parked_at", DateTime(timezone=True), nullable=True),
)

# Fetched source documents (PII): only when database.keep_source_documents_days is set,
# and deleted once older than that.
source_documents = Table(
    "source_documents",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False, index=True),
)

# Every manual decision about an offer: who, when, why.
manual_actions = Table(
    "manual_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("offer_id", String(64), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# One row per sync run.
runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("listed", Integer, nullable=False, default=0),
    Column("succeeded", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
)
