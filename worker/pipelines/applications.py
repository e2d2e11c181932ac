"""Applications: a source's jobs → their applications (with applicant and form) → each
target's applications map → the target, once per change.

A run reads, per job named in ``sources.<name>.applications``, every page of its applications
(nothing is decided from a partial list), then per application that is due:
 - fetch its applicant and its application form, checked to be about it;
 - per target: the map's ``when:`` leaves it out → ``not_chosen``, nothing sent;
 - the mapped payload's hash equals what the target holds → nothing sent;
 - otherwise it is sent: created on first sight, an update once the target gave its id (the
   map's ``find:``/``update``; a record found by the look-up is updated, never duplicated);
and last, an application missing from the job's complete list is ``removed``: nothing is sent
or deleted at the target (see README "Applications").

Failures are the offers': retried with backoff across runs, parked when permanent or out of
attempts (Sentry, a notice for HR users, ``hirebridge applications retry``). PageUp refusing our
credentials or its daily limit halts the source's run; a target refusing ours rests for the run.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from worker import alerts, metrics
from worker.errors import DeliveryError, HirebridgeError, RateLimitedError
from worker.mapping.engine import apply_map, fill_path, step_applies
from worker.mapping.loader import FieldMap
from worker.mapping.payloads import payload_hash
from worker.notices.book import NoticeBook
from worker.pipelines.policy import (
    CircuitBreaker,
    after_failure,
    credentials_refused,
    failure_facts,
)
from worker.pipelines.targets import send_step
from worker.redact import Redactor, scrub_text
from worker.settings import SyncSettings
from worker.settings.applications import ApplicationsSettings
from worker.sinks.http import Delivered, HttpSink
from worker.sources.applications import (
    ApplicationChecks,
    ApplicationRef,
    JobRef,
    fetch_application,
)
from worker.sources.pageup import SYSTEM, PageUpClient
from worker.store.applications import DELIVERED, AppKey, ApplicationLedger, AppState
from worker.store.ledger import Failure

log = structlog.get_logger(__name__)


@dataclass
class AppTarget:
    """A target of the applications flow: its sink and its applications map."""

    name: str
    sink: HttpSink
    field_map: FieldMap


@dataclass
class ApplicationRunReport:
    source: str
    run_id: str
    jobs: int = 0
    listed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    not_chosen: int = 0
    removed: int = 0
    failed: int = 0
    waiting: int = 0
    job_problems: list[str] = field(default_factory=list)
    invalid_entries: list[str] = field(default_factory=list)
    halted: str | None = None
    led_elsewhere: bool = False  # another worker runs this source's flow now: nothing done

    @property
    def ok(self) -> bool:
        return not (self.failed or self.halted or self.job_problems or self.invalid_entries)


def jobs_of(settings: ApplicationsSettings) -> list[JobRef]:
    return [JobRef(j) for j in settings.job_ids] + [
        JobRef(j, external=True) for j in settings.external_job_ids
    ]


def idempotency_key(source: str, application_id: str, target: str, digest: str) -> str:
    """One key per version of the payload: a retry of the same version carries the same key,
    a change is a new request."""
    return f"hirebridge:{source}:application:{application_id}:{target}:{digest[:16]}"


class ApplicationSync:
    """One source's applications flow (one run at a time)."""

    def __init__(
        self, *, source: str, pageup: PageUpClient, checks: ApplicationChecks,
        settings: ApplicationsSettings, targets: Mapping[str, AppTarget],
        ledger: ApplicationLedger, sync: SyncSettings, notices: NoticeBook, owner: str,
    ) -> None:  # fmt: skip
        self.source = source
        self._owner = owner  # this worker, in the lease that makes it the run's only leader
        self._renewed = 0.0
        self.pageup = pageup
        self._checks = checks
        self.settings = settings
        self.targets = dict(targets)
        self._ledger = ledger
        self._sync = sync
        self._notices = notices
        self._rng = random.Random()
        self._breaker = CircuitBreaker(sync.circuit_breaker_failures)
        self._halt: str | None = None
        self._resting: set[str] = set()
        self._stopping = False

    def stop(self) -> None:
        """Start no new application; those in flight finish and are recorded."""
        self._stopping = True

    async def run(self) -> ApplicationRunReport:
        report = ApplicationRunReport(self.source, uuid.uuid4().hex[:16])
        self._halt, self._resting = None, set()
        if not await self._lease():
            report.led_elsewhere = True
            log.info("application_run_led_elsewhere", source=self.source)
            return report
        try:
            await asyncio.to_thread(self._ledger.start_run, self.source, self._owner)
            return await self._run(report)
        finally:
            await asyncio.to_thread(self._ledger.release_lease, self.source, self._owner)

    async def _lease(self) -> bool:
        """Take or renew this worker's lease on the source's run (every third of it)."""
        self._renewed = time.monotonic()
        return await asyncio.to_thread(self._ledger.take_lease, self.source, self._owner,
                                       self._sync.lease_seconds)  # fmt: skip

    async def _keep_lease(self) -> None:
        if time.monotonic() - self._renewed < self._sync.lease_seconds / 3:
            return
        if not await self._lease():  # another worker took it over: stop starting anything
            log.error("application_lease_lost", source=self.source)
            self._stopping = True

    async def _run(self, report: ApplicationRunReport) -> ApplicationRunReport:
        with structlog.contextvars.bound_contextvars(
            source=self.source, application_run_id=report.run_id
        ):
            # Turned off by a reload: nothing is read until a restart drops the flow.
            for job in jobs_of(self.settings) if self.settings.enabled else []:
                if self._halt or self._stopping:
                    break
                report.jobs += 1
                with structlog.contextvars.bound_contextvars(job=job.key):
                    await self._job(job, report)
            report.halted = self._halt
            outcome = "halted" if report.halted else "ok" if report.ok else "partial"
            metrics.APPLICATION_RUNS.labels(self.source, outcome).inc()
            log.info("application_run_finished", jobs=report.jobs, listed=report.listed,
                     created=report.created, updated=report.updated, unchanged=report.unchanged,
                     not_chosen=report.not_chosen, removed=report.removed, failed=report.failed,
                     waiting=report.waiting, halted=report.halted)  # fmt: skip
        return report

    async def _job(self, job: JobRef, report: ApplicationRunReport) -> None:
        try:
            pages = await self.pageup.list_applications(job.job_id, external=job.external)
        except HirebridgeError as exc:
            await self._job_failed(job, exc, report)
            return
        listing = self._checks.listing(pages, job)
        report.listed += len(listing.applications)
        report.invalid_entries += listing.invalid
        for problem in listing.invalid:
            log.error("application_entry_invalid", problem=problem)
        await asyncio.to_thread(
            self._ledger.record_job,
            self.source,
            job.key,
            listed=len(listing.applications),
            invalid=len(listing.invalid),
        )
        states = await asyncio.to_thread(self._ledger.states, self.source, job.key)
        lanes = asyncio.Semaphore(self.settings.concurrency)
        await asyncio.gather(*(self._one(job, ref, states, report, lanes)
                               for ref in listing.applications))  # fmt: skip
        if listing.complete and not (self._halt or self._stopping):
            present = {ref.application_id for ref in listing.applications}
            gone = await asyncio.to_thread(self._ledger.record_removed, self.source, job.key,
                                           present)  # fmt: skip
            for state in gone:
                report.removed += 1
                metrics.APPLICATIONS.labels(self.source, state.target, "removed").inc()
                log.info("application_removed", application_id=state.application_id,
                         target=state.target, record_id=state.record_id)  # fmt: skip

    async def _job_failed(
        self, job: JobRef, exc: HirebridgeError, report: ApplicationRunReport
    ) -> None:
        status = exc.status if isinstance(exc, DeliveryError) else None
        what = "sExternalJobID" if job.external else "lJobID"
        if status == 404:
            reason = (f"source {self.source}: job {job.job_id} ({what}): PageUp has no such job "
                      f"(404); correct sources.{self.source}.applications")  # fmt: skip
        else:
            reason = f"source {self.source}: job {job.job_id} ({what}): {scrub_text(str(exc))}"
        report.job_problems.append(reason)
        await asyncio.to_thread(self._ledger.record_job, self.source, job.key, error=reason,
                                status=status)  # fmt: skip
        log.error("application_job_failed", job_id=job.job_id, http_status=status, error=reason)
        if self._stops_the_run(exc):
            self._stop(f"PageUp refused the applications of {self.source}: {exc}", exc)
            return
        alerts.application_job_failed(source=self.source, job=job.key, reason=reason,
                                      status=status)  # fmt: skip

    async def _one(
        self, job: JobRef, ref: ApplicationRef, states: dict[tuple[str, str], AppState],
        report: ApplicationRunReport, lanes: asyncio.Semaphore,
    ) -> None:  # fmt: skip
        async with lanes:
            await self._keep_lease()
            if self._halt or self._stopping:
                return
            now = datetime.now(UTC)
            due = [name for name in self.targets if name not in self._resting and not (
                (s := states.get((ref.application_id, name))) and s.waiting(now))]  # fmt: skip
            if not due:
                report.waiting += 1
                return
            with (
                alerts.record_scope(),
                structlog.contextvars.bound_contextvars(application_id=ref.application_id),
            ):
                try:
                    document = await fetch_application(self.pageup, job, ref, self._checks)
                except Exception as exc:
                    for index, name in enumerate(due):  # the breaker counts the application once
                        state = states.get((ref.application_id, name))
                        await self._fail(job, ref, name, "fetch", exc, scrub_text, state,
                                         count=index == 0)  # fmt: skip
                    report.failed += 1
                    return
                self._breaker.succeeded()
                for name in due:
                    if name not in self._resting:
                        state = states.get((ref.application_id, name))
                        await self._deliver(job, ref, document, self.targets[name], state, report)

    async def _deliver(
        self, job: JobRef, ref: ApplicationRef, document: dict[str, Any], target: AppTarget,
        state: AppState | None, report: ApplicationRunReport,
    ) -> None:  # fmt: skip
        key = AppKey(self.source, target.name, ref.application_id)
        field_map = target.field_map
        redact: Callable[[str], str] = scrub_text
        stage = "map"
        try:
            if field_map.when is not None and not _chosen(field_map, document):
                if state is None or state.status != "not_chosen":
                    await asyncio.to_thread(self._ledger.record_not_chosen, key, job.key)
                report.not_chosen += 1
                metrics.APPLICATIONS.labels(self.source, target.name, "not_chosen").inc()
                return
            record = apply_map(field_map, document)
            redact = Redactor(record.sensitive_values)
            digest = payload_hash(record.payload)
            if state is not None and state.payload_hash == digest:
                if state.status != DELIVERED:
                    await asyncio.to_thread(self._ledger.record_unchanged, key, job.key)
                report.unchanged += 1
                metrics.APPLICATIONS.labels(self.source, target.name, "unchanged").inc()
                return
            stage = "post"
            await asyncio.to_thread(self._ledger.record_sending, key, job.key, digest)
            sent = await self._send(target, document, record.payload,
                                    idempotency_key(*key_parts(key), digest), state)  # fmt: skip
            await asyncio.to_thread(
                self._ledger.record_delivered, key, job.key, digest=digest,
                record_id=sent.record_id, version=field_map.version,
            )  # fmt: skip
            outcome = "updated" if sent.updated else "created"
            setattr(report, outcome, getattr(report, outcome) + 1)
            metrics.APPLICATIONS.labels(self.source, target.name, outcome).inc()
            log.info("application_delivered", target=target.name, record_id=sent.record_id,
                     outcome=outcome)  # fmt: skip
        except Exception as exc:  # HirebridgeError, or a bug: keep the state honest
            await self._fail(job, ref, target.name, stage, exc, redact, state)
            report.failed += 1

    async def _send(
        self, target: AppTarget, document: dict[str, Any], payload: Any, key: str,
        state: AppState | None,
    ) -> Delivered:  # fmt: skip
        """An update to the record the target gave, once it gave one; else the map's upsert
        (look up, then update what is found or create)."""
        field_map, sink = target.field_map, target.sink
        step = field_map.steps[0]
        if state is not None and state.record_id and step.find is not None:
            scope = {**document, "payload": payload, "id": state.record_id}
            update = step.find.update_path
            await sink.deliver(
                payload, f"{key}:update", method=step.find.update_method,
                url=sink.url_for(fill_path(field_map, update, scope)),
                route=sink.route_for(update.text), stage="post:update", accept=step.accept,
                options=field_map.options,
            )  # fmt: skip
            return Delivered(state.record_id, 200, updated=True)
        return await send_step(sink, field_map, step, document, payload, key)

    async def _fail(
        self, job: JobRef, ref: ApplicationRef, target: str, stage: str, exc: Exception,
        redact: Callable[[str], str], state: AppState | None, *, count: bool = True,
    ) -> None:  # fmt: skip
        facts = failure_facts(exc, stage, redact)
        attempts = (state.attempts if state else 0) + 1
        decision = after_failure(exc, attempts=attempts, settings=self._sync,
                                 now=datetime.now(UTC), rng=self._rng)  # fmt: skip
        failure = Failure(facts.stage, facts.kind, facts.message, facts.status, decision.park,
                          decision.next_attempt_at)  # fmt: skip
        key = AppKey(self.source, target, ref.application_id)
        await asyncio.to_thread(self._ledger.record_failure, key, job.key, failure, attempts)
        metrics.APPLICATIONS.labels(
            self.source, target, "parked" if decision.park else "failed"
        ).inc()
        log.error("application_parked" if decision.park else "application_failed",
                  target=target, stage=facts.stage, error_kind=facts.kind, error=facts.message,
                  http_status=facts.status, next_attempt_at=decision.next_attempt_at)  # fmt: skip
        alerts.application_failed(
            source=self.source, application_id=ref.application_id, target=target,
            stage=facts.stage, kind=facts.kind, message=facts.message, system=facts.system,
            status=facts.status, parked=decision.park,
        )  # fmt: skip
        self._notices.application_parked(self.source, ref.application_id, target, facts,
                                         decision.park, job_id=job.job_id)  # fmt: skip
        remote = exc if isinstance(exc, DeliveryError) else None
        if remote is not None and remote.system == SYSTEM and self._stops_the_run(exc):
            self._stop(f"PageUp refused the applications of {self.source}: {facts.message}", exc)
        elif remote is not None and remote.system != SYSTEM and credentials_refused(exc):
            self._resting.add(target)
            log.error("application_target_resting", target=target, error=facts.message)
        elif count and remote is not None and remote.system == SYSTEM and self._breaker.failed(exc):
            self._stop(f"PageUp looks down: {self._sync.circuit_breaker_failures} applications "
                       f"in a row failed: {facts.message}", exc)  # fmt: skip

    @staticmethod
    def _stops_the_run(exc: Exception) -> bool:
        """Every call would fail the same way: credentials refused, or the daily limit."""
        daily = isinstance(exc, RateLimitedError) and exc.retry_after is None
        return credentials_refused(exc) or daily

    def _stop(self, reason: str, exc: Exception) -> None:
        if self._halt:
            return
        self._halt = reason
        status = exc.status if isinstance(exc, DeliveryError) else None
        log.error("application_run_halted", reason=reason, http_status=status)
        alerts.run_failed(reason=reason, system=SYSTEM, status=status, source=self.source)
        self._notices.source_halted(self.source, reason, exc)


def key_parts(key: AppKey) -> tuple[str, str, str]:
    return key.source, key.application_id, key.target


def _chosen(field_map: FieldMap, document: dict[str, Any]) -> bool:
    """The map's top-level ``when:`` (a MappingError names a condition that cannot run)."""
    return step_applies(field_map, field_map.steps[0], document)
