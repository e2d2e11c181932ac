"""The service, its schedule, the database and the run-wide settings (sync, Sentry, TLS, logs)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from worker.settings.common import Section


class DatabaseSettings(Section):
    url: str = "sqlite:///hirebridge.sqlite"
    # FULL survives power loss; NORMAL (WAL) survives process crashes and is faster.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # Keep each fetched source document (it holds PII) this many days, for diagnosis.
    # None (the default): never stored.
    keep_source_documents_days: int | None = Field(None, ge=1)
    # Each offer's attempts (outcome, reason, map version, next try) are kept this many days,
    # and at most the newest 50 per offer and target.
    attempt_history_days: int = Field(90, ge=1)
    # Group commit: state changes of concurrent offers and concurrent pushes that arrive within
    # this many milliseconds of each other (up to group_commit_rows) share one transaction,
    # and so one fsync. Each waits for that commit before it goes on (or a push is answered).
    group_commit_ms: float = Field(2.0, ge=0, le=100)
    group_commit_rows: int = Field(64, ge=1, le=10000)


class SyncSettings(Section):
    concurrency: int = Field(8, ge=1, le=256)
    max_rounds: int = Field(20, ge=1)
    # Across runs: a failing offer is tried again after a growing delay, and parked (left
    # alone until an admin retries it) after max_attempts, or at once for permanent failures.
    max_attempts: int = Field(8, ge=1)
    retry_backoff_initial_seconds: float = Field(60.0, ge=0)
    retry_backoff_max_seconds: float = Field(6 * 3600.0, gt=0)
    # This many offers in a row failing on the same remote system halts the run.
    circuit_breaker_failures: int = Field(5, ge=1)
    # A worker's claim on an offer; a crashed replica's offers are free again after it, or as
    # soon as the replica stops beating (worker_timeout_seconds), whichever comes first.
    lease_seconds: float = Field(600.0, gt=0)
    # A worker beats every sixth of this; one silent this long is taken for dead: its offers
    # and the runs it led (their leases) go to the other replicas. One whose own last beat is
    # older than half of this starts no send and no mark (Worker.may_act).
    worker_timeout_seconds: float = Field(30.0, ge=3)
    # A target that refused our credentials, or failed circuit_breaker_failures offers in a
    # row, rests this long (offers wait for it; the other targets go on), then is tried again.
    circuit_breaker_cooldown_seconds: float = Field(300.0, ge=0)
    # How often an idle worker looks for offers to help with (other replicas' runs, retries).
    poll_seconds: float = Field(1.0, gt=0)
    # Runs of different sources one worker leads at once (listing and reporting; the offers
    # share the lanes above).
    max_parallel_runs: int = Field(32, ge=1)


class ScheduleSettings(Section):
    """When ``hirebridge run`` syncs: every ``interval_seconds``, or on a cron expression."""

    interval_seconds: float | None = Field(300.0, gt=0)
    cron: str | None = None  # five fields, e.g. "*/10 7-19 * * mon-fri"; wins over the interval
    timezone: str = "UTC"
    # A run that could not start on time (the previous one still going, a paused process) still
    # runs when it can, within this many seconds; later ones are coalesced into one.
    misfire_grace_seconds: float = Field(3600.0, gt=0)

    @model_validator(mode="after")
    def _valid_schedule(self) -> Self:
        from worker.service.schedule import trigger_for  # APScheduler validates the expression

        if self.cron is None and self.interval_seconds is None:
            raise ValueError("give interval_seconds or cron")
        trigger_for(self)
        return self


class ServiceSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)  # 0: any free port (tests)
    # Reverse proxies whose X-Forwarded-For is believed (addresses), so that inbound allow_ips
    # see the pushing system's address, not the proxy's. Empty: the peer address is used.
    trusted_proxies: list[str] = []
    # Every request: the request line and headers together in at most max_header_bytes, in at
    # most max_headers headers (past either: 431), and all of it, body included, within
    # request_timeout_seconds of its first byte or of the connection opening (past it: 408).
    max_header_bytes: int = Field(16384, ge=1024)
    max_headers: int = Field(100, ge=10)
    request_timeout_seconds: float = Field(30.0, gt=0)
    schedule: ScheduleSettings = ScheduleSettings()
    # On SIGTERM/SIGINT: stop starting offers, let those in flight finish, exit within this.
    shutdown_grace_seconds: float = Field(25.0, gt=0)
    # /healthz fails when the scheduler loop has not beaten for this long.
    heartbeat_stale_seconds: float = Field(30.0, gt=0)


class SentrySettings(Section):
    """Alerts. Without a DSN nothing is sent."""

    dsn: SecretStr | None = None
    environment: str = "production"
    release: str | None = None  # default: hirebridge@<version>
    # Sentry Crons: every scheduled run checks in; a worker that stops running raises an alert.
    cron_monitor_slug: str | None = "hirebridge-offer-sync"
    checkin_margin_minutes: int = Field(5, ge=1)
    max_runtime_minutes: int = Field(60, ge=1)


class TlsSettings(Section):
    """TLS verification is always on; a private CA can be added, never checks turned off."""

    ca_bundle: Path | None = None


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
