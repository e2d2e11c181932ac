"""Prometheus metrics, served at /metrics by ``hirebridge run``.

Recorded where things happen: every remote call in ``worker.remote.http.exchange``, every
offer outcome in the offer pipeline, every run by the service.

Label cardinality is bounded by the configuration: ``source`` and ``target`` take the
configured names, ``system`` is ``pageup``, a target's name or an inbound/ATS system, ``stage``
and ``kind`` are the pipeline's own fixed words, ``status`` an HTTP status or a transport
failure. No offer id, person or URL is ever a label.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

LAST_SUCCESS = Gauge(
    "hirebridge_last_success_timestamp_seconds",
    "When a source's last run finished without failures",
    ["source"],
)
RUN_DURATION = Histogram(
    "hirebridge_run_duration_seconds", "Duration of sync runs",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)  # fmt: skip
RUNS = Counter("hirebridge_runs_total", "Source runs by outcome", ["source", "outcome"])
OFFERS = Counter(
    "hirebridge_offers_total",
    "Offer outcomes per source: processed (every target accepted, marked), failed, parked",
    ["source", "outcome"],
)
DELIVERIES = Counter(
    "hirebridge_deliveries_total",
    "Offers sent to each target: posted (accepted), failed, parked",
    ["target", "outcome"],
)
DOCUMENTS = Counter(
    "hirebridge_documents_total",
    "Offer documents per target: sent, already_there (found in the target's files after an "
    "unknown outcome), refused (a limit: size, type, content, link), failed",
    ["target", "outcome"],
)
DOCUMENT_BYTES = Counter(
    "hirebridge_document_bytes_total", "Bytes of offer documents sent to each target", ["target"]
)
DOCUMENT_SECONDS = Histogram(
    "hirebridge_document_seconds",
    "Time to move one offer document sent to a target, from its download to the target's answer",
    ["target"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
OFFER_FAILURES = Counter(
    "hirebridge_offer_failures_total", "Offer failures by stage and error kind", ["stage", "kind"]
)
OLDEST_WAITING = Gauge(
    "hirebridge_oldest_waiting_offer_age_seconds",
    "Per source, age of the oldest offer seen but not processed (0 when none)",
    ["source"],
)
SOURCE_HALTED = Gauge(
    "hirebridge_source_halted", "1 while a source's last run ended halted", ["source"]
)
TARGET_RESTING = Gauge(
    "hirebridge_target_resting",
    "1 while a target's circuit is open (it refused us, or failed N offers in a row)",
    ["target"],
)
REQUESTS = Counter(
    "hirebridge_http_requests_total", "Remote calls by system, stage and status",
    ["system", "stage", "status"],
)  # fmt: skip
REQUEST_SECONDS = Histogram(
    "hirebridge_http_request_duration_seconds", "Remote call latency", ["system"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
TOKEN_REFRESHES = Counter("hirebridge_token_refreshes_total", "OAuth2 tokens fetched", ["system"])
RATE_LIMITED = Counter("hirebridge_rate_limited_total", "429 answers received", ["system"])
INBOUND = Counter(
    "hirebridge_inbound_pushes_total",
    "Pushes received by source and outcome (stored, repeat, invalid, not_stored, refused_NNN)",
    ["source", "outcome"],
)
INBOUND_DELIVERIES = Counter(
    "hirebridge_inbound_deliveries_total",
    "Inbox deliveries by source and outcome (delivered, failed, parked)",
    ["source", "outcome"],
)
JOBS = Counter(
    "hirebridge_jobs_total", "Job posting outcomes: synced, closed, failed, parked", ["outcome"]
)
APPLICATIONS = Counter(
    "hirebridge_applications_total",
    "Applications per source and target: created, updated, unchanged, not_chosen, removed, "
    "failed, parked",
    ["source", "target", "outcome"],
)
APPLICATION_RUNS = Counter(
    "hirebridge_application_runs_total",
    "Applications runs by source and outcome",
    ["source", "outcome"],
)
JOB_RUNS = Counter("hirebridge_job_runs_total", "Job posting runs by outcome", ["outcome"])
SPOOL_DROPPED = Counter(
    "hirebridge_spool_dropped_total",
    "Error log rows or notices that could not be recorded (the database refused, or too many "
    "waited)",
    ["spool"],
)
PAGEUP_ERRORS = Counter(
    "hirebridge_pageup_errors_logged_total",
    "Failed calls to PageUp recorded in the error log for PageUp support",
    ["source"],
)
NOTICES = Counter("hirebridge_notices_total", "Notices to HR users recorded, by kind", ["kind"])
NOTICE_SENDS = Counter(
    "hirebridge_notice_sends_total",
    "Digests sent to each channel: sent, failed (tried again later)",
    ["channel", "outcome"],
)
NOTICES_WAITING = Gauge(
    "hirebridge_notices_waiting", "Notices not yet sent, per channel", ["channel"]
)
NOTICE_CHANNEL_FAILING = Gauge(
    "hirebridge_notice_channel_failures",
    "A channel's failed sends in a row (0: fine)",
    ["channel"],
)

# The console's overview: per remote system, when it was last called (epoch seconds), at which
# stage, and what it answered (an HTTP status or a transport failure). This process only.
LAST_CALLS: dict[str, tuple[float, str, str]] = {}


def note_call(system: str, stage: str, status: int | str) -> None:
    LAST_CALLS[system] = (time.time(), stage, str(status))
