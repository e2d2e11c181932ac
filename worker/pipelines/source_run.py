"""One run of one source: list its queue, let the lanes drain it, list again, report.

A run (its ticket taken from ``SourceRuns``, a lease that this worker renews while it runs):
 1. takes a snapshot of the queue (every page, before anything is marked processed) and stores
    it: only offers this listing named are worked on, by any replica's lanes;
 2. waits until none of them is left to try (each offer is tried once per run) and none is in
    flight;
 3. lists again and stores any offer it has not seen yet (the queue shifts as offers leave it),
    until nothing new appears;
 4. records its figures, and hands the source back with its next run time.

It stops early when the source halts (PageUp refusing us, its rate limit, an outage: no offer
could get through), when the worker stops, or when another worker took the run over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from worker import alerts, metrics
from worker.errors import DeliveryError, HirebridgeError
from worker.notices.book import NoticeBook
from worker.pipelines.parts import SourceParts
from worker.pipelines.pool import OfferPool
from worker.redact import scrub_text
from worker.settings import SyncSettings
from worker.sources.pageup import OfferListing
from worker.store.ledger import Ledger
from worker.store.runs import Runs
from worker.store.sources import RunTicket, SourceRuns
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)
RENEW_EVERY = 1 / 3  # of the lease


@dataclass
class RunReport:
    run_id: str
    source: str
    listed: int = 0
    succeeded: int = 0
    failed: int = 0
    parked: int = 0
    not_due: int = 0  # listed but not tried: parked, skipped, backing off, in another run
    invalid_entries: list[str] = field(default_factory=list)
    failed_offers: list[str] = field(default_factory=list)
    halted: str | None = None
    stopped: bool = False  # the worker stopped before the run was done
    processed_here: int = 0  # of the processed offers, those this worker processed
    led_elsewhere: bool = False  # this worker only helped a run another worker led

    @property
    def ok(self) -> bool:
        return not (self.failed or self.invalid_entries or self.halted)

    @property
    def outcome(self) -> str:
        if self.led_elsewhere:
            return "helped"
        if self.halted:
            return "halted"
        if self.stopped:
            return "stopped"
        return "ok" if self.ok else "partial"


@dataclass
class RunContext:
    """What every run of this worker shares."""

    ledger: Ledger
    runs: Runs
    sources: SourceRuns
    store: StoreThread
    pool: OfferPool
    owner: str
    settings: SyncSettings
    next_run_at: Callable[[str, datetime], datetime]  # (source, due at) -> next due time
    # Why no offer of the source can get through now (every target it routes to rests), or None.
    all_targets_resting: Callable[[str], str | None]
    notices: NoticeBook  # a halted source tells HR users
    keep_documents_days: int | None = None  # kept source documents expire after this


class SourceRun:
    def __init__(self, ticket: RunTicket, parts: SourceParts, context: RunContext) -> None:
        self._ticket = ticket
        self._parts = parts
        self._context = context
        self._stopping = False
        self._lost = False
        self.report = RunReport(ticket.run_id, ticket.source)
        self._here_before = context.pool.processed_here[ticket.source]

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> RunReport:
        ticket, report, context = self._ticket, self.report, self._context
        started = time.monotonic()
        with (
            alerts.record_scope(),
            structlog.contextvars.bound_contextvars(run_id=ticket.run_id, source=ticket.source),
        ):
            log.info("run_started")
            self._parts.breaker.succeeded()
            await self._purge_documents()
            renewing = asyncio.create_task(self._renew())
            try:
                await self._rounds()
            except HirebridgeError as exc:
                self._halt_on_listing(exc)
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
            report.halted = report.halted or await self._call(context.sources.halted, ticket)
            await self._finish()
            self._record_metrics(time.monotonic() - started)
            log.info("run_finished", outcome=report.outcome, listed=report.listed,
                     succeeded=report.succeeded, failed=report.failed, parked=report.parked,
                     invalid_entries=len(report.invalid_entries),
                     halted=report.halted)  # fmt: skip
        return report

    async def _purge_documents(self) -> None:
        days = self._context.keep_documents_days
        if days is None:
            return
        cutoff = datetime.now(UTC) - timedelta(days=days)
        purged = await self._call(self._context.ledger.purge_documents, cutoff)
        log.info("source_documents_purged", count=purged, older_than_days=days)

    async def _rounds(self) -> None:
        seen: set[str] = set()
        invalid: dict[str, str] = {}  # fingerprint -> where (counted once per run)
        for _ in range(self._context.settings.max_rounds):
            listing = await self._parts.pageup.list_offers()
            for where, entry in listing.invalid_entries:
                invalid.setdefault(_fingerprint(entry), where)
            self.report.invalid_entries = list(invalid.values())
            fresh = [ref for ref in listing.offers if ref.offer_id not in seen]
            if not fresh or self._done():
                return
            if invalid:
                log.error("offer_list_entries_invalid", count=len(invalid),
                          where=list(invalid.values())[:10],
                          id_path=self._parts.settings.offer_id_path)  # fmt: skip
            seen.update(ref.offer_id for ref in fresh)
            self.report.listed = len(seen)
            snapshot = datetime.now(UTC)
            await self._store(listing, snapshot)
            if self._done():
                return
            await self._drained(snapshot)

    async def _store(self, listing: OfferListing, snapshot: datetime) -> None:
        context, ticket = self._context, self._ticket
        refs = [(ref.offer_id, ref.application_id) for ref in listing.offers]
        await self._call(context.ledger.enqueue, ticket.source, refs, snapshot)
        if not await self._call(context.sources.record_listing, ticket, context.owner, snapshot):
            self._lost = True
            log.warning("run_taken_over")
            return
        context.pool.wake()

    async def _drained(self, snapshot: datetime) -> None:
        """Wait until no offer of the listing is left to try and none is in flight."""
        context, source = self._context, self._ticket.source
        progressed = context.pool.progress_of(source)
        asked = -math.inf
        while not self._done():
            progressed.clear()
            loop_time = asyncio.get_running_loop().time()
            if context.pool.busy(source) and loop_time - asked < context.settings.poll_seconds:
                # Not drained while this worker still holds some of its offers; asking the
                # database after every offer cost a count over the whole listing each time.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progressed.wait(), context.settings.poll_seconds)
                continue
            asked = loop_time
            waiting, in_flight, halted = await self._call(
                context.sources.progress, self._ticket, snapshot
            )
            if halted or (not waiting and not in_flight):
                return
            if (resting := context.all_targets_resting(source)) is not None:
                self.report.halted = resting
                await self._call(context.sources.halt, self._ticket, resting)
                return
            # Woken as soon as this worker finishes one of the source's offers; offers other
            # replicas process are seen at the next poll.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progressed.wait(), context.settings.poll_seconds)

    def _done(self) -> bool:
        return self._stopping or self._lost or self.report.halted is not None

    async def _renew(self) -> None:
        context = self._context
        lease = context.settings.worker_timeout_seconds
        while True:
            await asyncio.sleep(lease * RENEW_EVERY)
            if not await self._call(context.sources.renew, self._ticket, context.owner, lease):
                self._lost = True
                log.warning("run_taken_over")
                return

    def _halt_on_listing(self, exc: HirebridgeError) -> None:
        """The queue could not be listed: nothing can be done in this run."""
        where = f"{exc.system} {exc.stage}" if isinstance(exc, DeliveryError) else exc.kind
        reason = f"{where} failed: {scrub_text(str(exc))}"
        self.report.halted = reason
        remote = exc if isinstance(exc, DeliveryError) else None
        log.error("run_failed", reason=reason, error_kind=exc.kind,
                  system=remote.system if remote else None,
                  http_status=remote.status if remote else None)  # fmt: skip
        alerts.run_failed(source=self._ticket.source, reason=reason,
                          system=remote.system if remote else None,
                          status=remote.status if remote else None)  # fmt: skip
        self._context.notices.source_halted(self._ticket.source, reason, exc)

    async def _finish(self) -> None:
        context, ticket, report = self._context, self._ticket, self.report
        report.stopped = self._stopping
        figures = await self._call(context.runs.figures, ticket.source, ticket.run_id)
        report.succeeded, report.failed, report.parked = (
            figures.succeeded, figures.failed, figures.parked,
        )  # fmt: skip
        tried = figures.succeeded + figures.failed
        report.not_due = max(0, report.listed - tried)
        report.failed_offers = list(figures.failed_offers)
        report.processed_here = context.pool.processed_here[ticket.source] - self._here_before
        if report.halted is None and not report.stopped:
            # No offer of this source could get through, and none will until a target rests.
            report.halted = context.all_targets_resting(ticket.source)
        if self._lost:
            return  # the run is another worker's now: it records and schedules it
        await self._call(context.runs.finish, ticket.run_id, outcome=report.outcome,
                         listed=report.listed, figures=figures,
                         invalid_where=report.invalid_entries, error=report.halted)  # fmt: skip
        now = datetime.now(UTC)
        # A run cut short by a stop runs again as soon as a worker can take it.
        next_run = now if self._stopping else context.next_run_at(ticket.source, ticket.due_at)
        await self._call(context.sources.finish, ticket, context.owner, next_run)

    def _record_metrics(self, duration: float) -> None:
        report = self.report
        metrics.RUN_DURATION.observe(duration)
        metrics.RUNS.labels(report.source, report.outcome).inc()
        if report.ok and not report.stopped:
            metrics.LAST_SUCCESS.labels(report.source).set(time.time())

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._context.store.call(fn, *args, **kwargs)


def _fingerprint(entry: Any) -> str:
    """The same unreadable entry on every listing of a run counts once."""
    canonical = json.dumps(entry, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
