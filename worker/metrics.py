"""Prometheus metrics, served at /metrics by ``hirebridge run``.

Recorded where things happen: every remote call in ``worker.remote.http.exchange``, every
offer outcome in the offer pipeline, every run by the service.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LAST_SUCCESS = Gauge(
    "hirebridge_last_success_timestamp_seconds", "When the last run finished without failures"
)
RUN_DURATION = Histogram(
    "hirebridge_run_duration_seconds", "Duration of sync runs",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)  # fmt: skip
RUNS = Counter("hirebridge_runs_total", "Sync runs by outcome", ["outcome"])
OFFERS = Counter(
    "hirebridge_offers_total",
    "Offer outcomes: posted (HRIS accepted), processed (marked), failed, parked",
    ["outcome"],
)
OFFER_FAILURES = Counter(
    "hirebridge_offer_failures_total", "Offer failures by stage and error kind", ["stage", "kind"]
)
OLDEST_WAITING = Gauge(
    "hirebridge_oldest_waiting_offer_age_seconds",
    "Age of the oldest offer seen but not processed (0 when none)",
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
JOB_RUNS = Counter("hirebridge_job_runs_total", "Job posting runs by outcome", ["outcome"])
