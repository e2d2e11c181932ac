"""The state store's tables. Only what is needed to resume: ids, status, hashes, errors.

No source document or payload is stored: they hold PII.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    literal_column,
    or_,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)

# One row per offer of a source (a PageUp tenant): where it stands as a whole. The offer is
# claimed (a lease) by one worker at a time; it is marked processed in PageUp only after every
# target its routes chose (``offer_targets``) has accepted it.
offers = Table(
    "offers",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    # pending -> posted (every chosen target accepted) -> processed (marked); failed; skipped
    Column("status", String(16), nullable=False, index=True),
    Column("stage", String(48), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("application_id", String(64), nullable=True),  # as the offers list named it
    Column("last_run_id", String(32), nullable=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The latest listing of the queue that named the offer: only offers in a run's own
    # listing are worked on, so an offer that left the queue is never taken from a stale one.
    Column("listed_at", DateTime(timezone=True), nullable=True),
    # When the targets were chosen (the offer_targets rows written); null: not yet.
    Column("routed_at", DateTime(timezone=True), nullable=True),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    # Retries across runs: not tried again before this time.
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    # Parked (dead letter): not tried again until an admin says so.
    Column("parked_at", DateTime(timezone=True), nullable=True),
    # The worker processing the offer now, and until when its claim holds.
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    # The latest attempt's steps, for the console's timeline: claimed (by claim_due), source
    # document fetched and field maps applied (written with the next state change that
    # follows them, so they cost no commit of their own). A claim clears the other two.
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("fetched_at", DateTime(timezone=True), nullable=True),
    Column("mapped_at", DateTime(timezone=True), nullable=True),
)

# The offers that could still be due: neither parked nor skipped, and not processed unless
# listed again after (PageUp did not take the mark: it came back). The constants are literal,
# not bound, so that both databases see a claim's query imply this predicate. Claims read
# each source's open offers oldest first through ``ix_offers_open`` (worker/store/due.py).
OPEN_OFFER = and_(
    offers.c.parked_at.is_(None),
    offers.c.status != literal_column("'skipped'"),
    or_(
        offers.c.status != literal_column("'processed'"), offers.c.processed_at < offers.c.listed_at
    ),
)
Index(
    "ix_offers_open",
    offers.c.source,
    offers.c.first_seen_at,
    offers.c.offer_id,
    sqlite_where=OPEN_OFFER,
    postgresql_where=OPEN_OFFER,
)

# One row per (offer, target) its routes chose: that target's own state, attempts, backoff,
# parking and idempotency key. A target that accepted is never sent the offer again.
offer_targets = Table(
    "offer_targets",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("target", String(64), primary_key=True),
    # pending -> posting (outcome unknown until answered) -> posted; failed
    Column("status", String(16), nullable=False),
    Column("stage", String(48), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("record_id", String(128), nullable=True),  # the id the target gave the record
    Column("idempotency_key", String(200), nullable=True),
    Column("payload_hash", String(64), nullable=True),
    Column("mapping_version", String(32), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("parked_at", DateTime(timezone=True), nullable=True),
)

# Every attempt's outcome (worker.store.attempts), one row per target it ended for, or one for
# the offer as a whole (target null: fetch, route, mark), written in the transaction of the
# state change it explains. Reasons are scrubbed as the ledger's last_error is (the record's
# personal values, and what looks like personal data), ids and versions.
offer_attempts = Table(
    "offer_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("offer_id", String(64), nullable=False),
    Column("target", String(64), nullable=True),
    Column("attempt", Integer, nullable=False),  # the offer's attempt (its claims) it was in
    Column("run_id", String(32), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),  # the claim
    Column("finished_at", DateTime(timezone=True), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),  # posted, processed, failed, parked
    Column("stage", String(48), nullable=True),
    Column("error_kind", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("record_id", String(128), nullable=True),
    Column("mapping_version", String(32), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Index("ix_offer_attempts_offer", "source", "offer_id", "target"),
)

# Multi-step field maps: each step an offer has been sent through, per target. A step that is
# "done" is never sent again; one left "posting" (outcome unknown) is resent with the same
# idempotency key.
offer_steps = Table(
    "offer_steps",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("target", String(64), primary_key=True),
    Column("step", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("record_id", String(128), nullable=True),
    Column("idempotency_key", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Offer documents sent to a target (issue 14), one row per (offer, target, PageUp document):
# the document's SHA-256 and size (never its content or name), the choice of the map that took
# it, and where it stands: posting (the upload's outcome unknown until answered), done, or
# failed with the reason (a required one keeps the target from "posted"; an optional one waits
# for `hirebridge retry --documents`).
offer_documents = Table(
    "offer_documents",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("target", String(64), primary_key=True),
    Column("document_id", String(64), primary_key=True),  # PageUp's PUReferenceID
    Column("choice", String(40), nullable=False),
    Column("required", Boolean, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("sha256", String(64), nullable=True),
    Column("size_bytes", BigInteger, nullable=True),
    Column("idempotency_key", String(200), nullable=False),
    Column("record_id", String(128), nullable=True),  # the target's id for the file
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
)

# One row per source: its schedule and its run in progress, owned by one worker at a time
# (a lease), so that replicas share the sources and a dead replica's runs move to another.
source_state = Table(
    "source_state",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("run_id", String(32), nullable=True),  # the run in progress (or the last one)
    Column("listed_at", DateTime(timezone=True), nullable=True),  # that run's latest listing
    Column("halted", Text, nullable=True),  # why that run stopped early, if it did
    Column("last_started_at", DateTime(timezone=True), nullable=True),
    Column("last_finished_at", DateTime(timezone=True), nullable=True),
)

# One row per running worker process, beating while it lives: a lease held by a worker that
# stopped beating is void, so a dead replica's offers and source runs move to another at once.
workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("host", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
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
    Column("source", String(64), primary_key=True),
    Column("offer_id", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False, index=True),
)

# Every manual decision about an offer (or one of its targets): who, when, why.
manual_actions = Table(
    "manual_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("offer_id", String(64), nullable=False, index=True),
    Column("target", String(64), nullable=True),
    Column("action", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# One row per run of a source.
runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("source", String(64), nullable=False, index=True),
    Column("owner", String(64), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("listed", Integer, nullable=False, default=0),
    Column("succeeded", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("parked", Integer, nullable=False, default=0),
    # Entries of the offers list that could not be read (no id), and where they were.
    Column("invalid_entries", Integer, nullable=False, default=0),
    Column("invalid_where", Text, nullable=True),
    Column("error", Text, nullable=True),
)

# Every failed call to PageUp (issue 17: "log all relevant errors and be able to provide a copy
# to PageUp"): the call's path template, never its URL, and PageUp's own messages, scrubbed.
# No bodies. Deleted after error_log.retention_days.
pageup_errors = Table(
    "pageup_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("source", String(64), nullable=False, index=True),
    Column("method", String(8), nullable=False),
    Column("route", String(200), nullable=False),
    Column("stage", String(48), nullable=False),
    Column("status", Integer, nullable=True),  # null: no HTTP answer (timeout, refused...)
    Column("attempt", Integer, nullable=False),
    Column("messages", Text, nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("offer_id", String(64), nullable=True),  # the offer being worked on, if any
)

# Notices to HR users: one row per stuck hire (a parked offer, push or job) or halted source,
# in plain words. Only the offer id, position and start date name the hire.
notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # offer, push, job, source
    Column("source", String(64), nullable=False),
    Column("subject", String(128), nullable=True),  # offer id, inbox id, job id
    Column("target", String(64), nullable=True),
    Column("position", String(120), nullable=True),
    Column("start_date", String(10), nullable=True),
    Column("problem", Text, nullable=False),
    Column("action", Text, nullable=False),
    # A halted source is notified once per cause within notifications.halt_repeat_hours.
    Column("repeat_key", String(200), nullable=True, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

# Each notice on each channel it goes to: sent once (sent_at), with the digest it went in.
notice_sends = Table(
    "notice_sends",
    metadata,
    Column("notice_id", Integer, ForeignKey("notices.id"), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True, index=True),
)

# One row per channel: its failures in a row and when it is tried next, and which worker
# sends its digest now (a lease), so that replicas never send one digest twice.
notice_channels = Table(
    "notice_channels",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_sent_at", DateTime(timezone=True), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
)

# Applications (issue 17): one row per application of a source and target that takes it. The
# hash of the payload last accepted says whether a later reading changed it (sent again as an
# update) or not (nothing sent); the target's record id is where updates go.
applications = Table(
    "applications",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("target", String(64), primary_key=True),
    Column("application_id", String(64), primary_key=True),
    Column("job_key", String(80), nullable=False, index=True),
    # delivered; sending (outcome unknown until recorded); failed; not_chosen (the map's
    # `when` leaves it out); removed (gone from PageUp's list); skipped (an admin's decision)
    Column("status", String(16), nullable=False),
    Column("payload_hash", String(64), nullable=True),  # what the target holds
    Column("sending_hash", String(64), nullable=True),  # what is being sent
    Column("record_id", String(128), nullable=True),
    Column("mapping_version", String(32), nullable=True),
    Column("sends", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("stage", String(48), nullable=True),
    Column("error_kind", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("removed_at", DateTime(timezone=True), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("parked_at", DateTime(timezone=True), nullable=True),
)

# The jobs whose applications a source reads: when each was last read, and why it could not be.
application_jobs = Table(
    "application_jobs",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("job_key", String(80), primary_key=True),
    Column("listed", Integer, nullable=False, default=0),
    Column("invalid_entries", Integer, nullable=False, default=0),
    Column("last_listed_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Who runs each source's applications flow now (a lease, renewed while the run goes on): with
# several replicas, one run at a time per source.
application_runs = Table(
    "application_runs",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("last_started_at", DateTime(timezone=True), nullable=True),
    Column("last_finished_at", DateTime(timezone=True), nullable=True),
)
