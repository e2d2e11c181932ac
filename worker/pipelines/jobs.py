"""Job postings: the organisation's job records → field map → the ATS's ERP Integration API.

A run reads the whole source first, then per job (in source order):
 - first sight → create-job, and the ATS job id is stored against the source id;
 - a mapped payload different from the last one sent (hash) → update-job; the same → nothing;
 - 409 JOB_EXISTS on a create (a job with that title exists, e.g. one created just before a
   crash) → link the job id the ATS names, then update it: never a duplicate;
and last, a job that left the source → update-job with ``ats.close_status``, but only when the
source was read completely and the share of open jobs to close is within the guard.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from worker import alerts, metrics
from worker.errors import DeliveryError, HirebridgeError, MappingError, PermanentError
from worker.mapping.engine import apply_map
from worker.mapping.loader import FieldMap
from worker.mapping.payloads import payload_hash
from worker.notices.book import NoticeBook
from worker.pipelines.policy import CircuitBreaker, after_failure, failure_facts
from worker.redact import Redactor, scrub_text
from worker.settings import AtsSettings, SyncSettings
from worker.sinks.ats import AtsClient, AtsRefused, JobExists, job_problems
from worker.sources.jobs import JobListing, SourceJob, read_jobs
from worker.store.jobs import CLOSED, OPEN, JobLedger, JobState
from worker.store.ledger import Failure

log = structlog.get_logger(__name__)


@dataclass
class JobRunReport:
    run_id: str
    listed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: int = 0
    reconciled: int = 0
    failed: int = 0
    not_due: int = 0
    source_problems: list[str] = field(default_factory=list)
    halted: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.failed or self.halted or self.source_problems)


class JobSync:
    def __init__(
        self,
        *,
        ats: AtsClient,
        ledger: JobLedger,
        field_map: FieldMap,
        settings: AtsSettings,
        sync: SyncSettings,
        read: Callable[[], Any],
        notices: NoticeBook,
    ) -> None:
        self._ats = ats
        self._notices = notices  # parked jobs tell HR users
        self._ledger = ledger
        self._map = field_map
        self._settings = settings
        self._sync = sync
        self._read = read  # async () -> JobListing
        self._rng = random.Random()
        self._breaker = CircuitBreaker(sync.circuit_breaker_failures)
        self._halt: str | None = None
        self._stopping = False

    def stop(self) -> None:
        """Start no new job; the one in flight finishes and is recorded. Nothing is closed."""
        self._stopping = True

    def replace_map(self, field_map: FieldMap) -> None:
        self._map = field_map

    async def run(self) -> JobRunReport:
        report = JobRunReport(run_id=uuid.uuid4().hex[:16])
        self._halt = None
        with structlog.contextvars.bound_contextvars(job_run_id=report.run_id):
            try:
                listing: JobListing = await self._read()
            except HirebridgeError as exc:
                report.halted = f"the job source cannot be read: {scrub_text(str(exc))}"
                self._stop(report.halted, exc)
                return report
            report.listed = len(listing.jobs)
            report.source_problems = listing.problems
            for problem in listing.problems:
                log.error("job_source_record_invalid", problem=problem)
            states = await asyncio.to_thread(self._ledger.all)
            now = datetime.now(UTC)
            for job in listing.jobs:
                if self._halt or self._stopping:
                    break
                state = states.get(job.source_id)
                if state is not None and _waiting(state, now):
                    report.not_due += 1
                    continue
                with (
                    alerts.record_scope(),
                    structlog.contextvars.bound_contextvars(source_job_id=job.source_id),
                ):
                    await self._sync_one(job, state, report)
            if not (self._halt or self._stopping):
                await self._close_missing(listing, states, report)
            report.halted = report.halted or self._halt
            metrics.JOB_RUNS.labels(
                "halted" if report.halted else "ok" if report.ok else "partial"
            ).inc()
            log.info(
                "job_run_finished",
                listed=report.listed,
                created=report.created,
                updated=report.updated,
                unchanged=report.unchanged,
                closed=report.closed,
                reconciled=report.reconciled,
                failed=report.failed,
                halted=report.halted,
            )
        return report

    async def _sync_one(self, job: SourceJob, state: JobState | None, report: JobRunReport) -> None:
        redact: Callable[[str], str] = scrub_text
        stage = "map"
        begun = False
        try:
            record = apply_map(self._map, {"job": job.record})
            redact = Redactor(record.sensitive_values)
            payload = record.payload
            problems = job_problems(payload)
            if problems:
                raise MappingError([f"{job.origin}: {problem}" for problem in problems])
            digest = payload_hash(payload)
            known = state is not None and state.ats_job_id is not None
            if known and state and state.status == OPEN and state.payload_hash == digest:
                report.unchanged += 1
                return
            await asyncio.to_thread(self._ledger.begin_attempt, job.source_id)
            begun = True
            if known and state and state.ats_job_id:
                stage = "update"
                if state.status == CLOSED and "status" not in payload:
                    payload = {**payload, "status": "PUBLISHED"}  # back in the source: reopen
                await self._ats.update(state.ats_job_id, payload)
                job_id = state.ats_job_id
                report.updated += 1
                log.info("job_updated", ats_job_id=job_id, reopened=state.status == CLOSED)
            else:
                stage = "create"
                await asyncio.to_thread(self._ledger.record_creating, job.source_id)
                job_id = await self._create(payload, report)
            await asyncio.to_thread(
                self._ledger.record_synced, job.source_id, ats_job_id=job_id,
                payload_hash=digest, mapping_version=self._map.version,
            )  # fmt: skip
            self._breaker.succeeded()
            metrics.JOBS.labels("synced").inc()
        except Exception as exc:  # HirebridgeError, or a bug: keep the state honest
            if not begun:
                await asyncio.to_thread(self._ledger.begin_attempt, job.source_id)
            await self._fail(job.source_id, stage, exc, redact, state)
            report.failed += 1

    async def _create(self, payload: dict[str, Any], report: JobRunReport) -> str:
        try:
            created = await self._ats.create(payload)
        except JobExists as exc:
            if exc.job_id is None:
                raise PermanentError(
                    f"{exc}; the ATS did not say which job: link it with "
                    "`hirebridge jobs link SOURCE_ID ATS_JOB_ID`",
                    system="ats", status=409, stage="create",
                ) from None  # fmt: skip
            await self._ats.update(exc.job_id, payload)
            report.reconciled += 1
            log.warning("job_exists_linked", ats_job_id=exc.job_id)
            return exc.job_id
        report.created += 1
        log.info("job_created", ats_job_id=created.job_id, ats_status=created.status)
        return created.job_id

    async def _close_missing(
        self, listing: JobListing, states: dict[str, JobState], report: JobRunReport
    ) -> None:
        status = self._settings.close_status
        present = {job.source_id for job in listing.jobs} | listing.held_ids
        open_jobs = [s for s in states.values() if s.status == OPEN and s.ats_job_id]
        gone = [s for s in open_jobs if s.source_id not in present and s.parked_at is None]
        if not gone or status is None:
            return
        if not listing.complete:
            log.warning("jobs_not_closed_source_incomplete", would_close=len(gone))
            return
        if len(gone) > 1 and len(gone) > self._settings.max_close_fraction * len(open_jobs):
            reason = (
                f"the source lacks {len(gone)} of {len(open_jobs)} open jobs, more than "
                f"ats.max_close_fraction ({self._settings.max_close_fraction}); none closed"
            )
            self._stop(reason, None)
            report.halted = reason
            return
        for state in gone:
            assert state.ats_job_id is not None
            with (
                alerts.record_scope(),
                structlog.contextvars.bound_contextvars(source_job_id=state.source_id),
            ):
                try:
                    await asyncio.to_thread(self._ledger.begin_attempt, state.source_id)
                    await self._ats.update(state.ats_job_id, {"status": status})
                    await asyncio.to_thread(self._ledger.record_closed, state.source_id)
                    report.closed += 1
                    metrics.JOBS.labels("closed").inc()
                    log.info("job_closed", ats_job_id=state.ats_job_id, ats_status=status)
                except Exception as exc:
                    await self._fail(state.source_id, "close", exc, scrub_text, state)
                    report.failed += 1
            if self._halt:
                return

    async def _fail(
        self,
        source_id: str,
        stage: str,
        exc: Exception,
        redact: Callable[[str], str],
        state: JobState | None,
    ) -> None:
        # The pipeline's own stage (map, create, update, close) names a job's failure.
        facts = failure_facts(exc, stage, redact)
        kind, message, status = facts.kind, facts.message, facts.status
        attempts = (state.attempts if state else 0) + 1
        decision = after_failure(exc, attempts=attempts, settings=self._sync,
                                 now=datetime.now(UTC), rng=self._rng)  # fmt: skip
        failure = Failure(stage, kind, message, status, decision.park, decision.next_attempt_at)
        await asyncio.to_thread(self._ledger.record_failure, source_id, failure)
        metrics.JOBS.labels("parked" if decision.park else "failed").inc()
        log.error(
            "job_parked" if decision.park else "job_failed",
            stage=stage,
            error_kind=kind,
            error=message,
            http_status=status,
            next_attempt_at=decision.next_attempt_at,
        )
        if isinstance(exc, AtsRefused) and exc.stops_the_run:
            if exc.status == 404:
                name = self._settings.source_name
                problem = f"ats.source_name {name!r} is not a source the ATS knows"
                self._stop(f"the ATS refused us ({message}): configuration error: {problem}", exc)
            else:
                self._stop(f"the ATS refused us ({message}): no job can be sent", exc)
            return
        alerts.job_failed(source_id=source_id, stage=stage, kind=kind, message=message,
                          status=status, parked=decision.park)  # fmt: skip
        self._notices.job_parked(source_id, facts, decision.park)
        if self._breaker.failed(exc):
            self._stop(f"the ATS looks down: {self._sync.circuit_breaker_failures} jobs in a row "
                       f"failed: {message}", exc)  # fmt: skip

    def _stop(self, reason: str, exc: Exception | None) -> None:
        if self._halt:
            return
        self._halt = reason
        status = exc.status if isinstance(exc, DeliveryError) else None
        system = exc.system if isinstance(exc, DeliveryError) else "ats"
        log.error("job_run_halted", reason=reason, http_status=status)
        alerts.run_failed(reason=reason, system=system, status=status)


def _waiting(state: JobState, now: datetime) -> bool:
    if state.parked_at is not None:
        return True
    due = state.next_attempt_at
    if due is not None and due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due is not None and due > now


def job_reader(settings: AtsSettings, client: Any) -> Callable[[], Any]:
    async def read() -> JobListing:
        return await read_jobs(settings.source, client)

    return read
