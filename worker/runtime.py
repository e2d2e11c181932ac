"""Building a worker from settings: the store, and one set of parts per source (a PageUp client
and its routes) and per target (an HTTP sink and its field map); also the inbound deliveries
and the job postings sync. The one place that turns settings into running parts."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine

from worker import alerts, metrics
from worker.errors import ConfigError, DeliveryError
from worker.inbound.pop import PopEngineClient
from worker.mapping.loader import FieldMap, load_field_map
from worker.notices.book import NoticeBook
from worker.pipelines.inbound import InboundDelivery, Target
from worker.pipelines.jobs import JobSync, job_reader
from worker.pipelines.offers import OfferProcessor
from worker.pipelines.parts import SourceParts, TargetParts
from worker.pipelines.policy import CircuitBreaker
from worker.pipelines.pool import OfferPool
from worker.pipelines.source_run import RunContext, RunReport, SourceRun
from worker.remote.http import Observer
from worker.remote.lanes import HttpLanes, new_client
from worker.routing import compile_routes
from worker.service.schedule import next_run_after
from worker.settings import Settings
from worker.sinks.ats import AtsClient
from worker.sinks.http import HttpSink
from worker.sources.downloads import Downloader
from worker.sources.offer_document import DocumentChecks
from worker.sources.pageup import PageUpClient
from worker.store.attempts import AttemptHistory
from worker.store.db import create_store_engine, migrate, one_process_only, sqlite_file
from worker.store.inbox import Inbox
from worker.store.jobs import JobLedger
from worker.store.ledger import Ledger
from worker.store.runs import Runs
from worker.store.sources import RunTicket, SourceRuns
from worker.store.thread import StoreThread
from worker.store.workers import Workers, new_worker_id
from worker.support.errorlog import PageUpErrors

log = structlog.get_logger(__name__)


def open_store(settings: Settings) -> Engine:
    """The state store, migrated to the newest schema."""
    engine = create_store_engine(settings.database)
    migrate(engine)
    return engine


def http_client(settings: Settings, concurrency: int | None = None) -> httpx.AsyncClient:
    """The client for calls made outside a worker lane (listing the queue, previews)."""
    lanes = settings.sync.concurrency if concurrency is None else concurrency
    return new_client(lanes * 3 + 4, settings.tls.ca_bundle)


def build_source(
    settings: Settings, name: str, client: httpx.AsyncClient, observe: Observer | None = None
) -> SourceParts:
    """``observe``: told of each failed PageUp call (the error log for PageUp support)."""
    source = settings.sources[name]
    return SourceParts(
        name=name,
        settings=source,
        pageup=PageUpClient(source, client, observe),
        checks=DocumentChecks(source.document_ids),
        routes=compile_routes(settings.routes, name),
        breaker=CircuitBreaker(settings.sync.circuit_breaker_failures),
    )


def build_target(
    settings: Settings, name: str, client: httpx.AsyncClient, field_map: FieldMap | None = None
) -> TargetParts:
    target = settings.targets[name]
    return TargetParts(
        name=name,
        sink=HttpSink(target, client, system=name),
        field_map=field_map or load_field_map(target.mapping),
        breaker=CircuitBreaker(
            settings.sync.circuit_breaker_failures, settings.sync.circuit_breaker_cooldown_seconds
        ),
    )


def load_target_maps(settings: Settings) -> dict[str, FieldMap]:
    """Every target's field map; ConfigError lists the problems of all of them."""
    maps, problems = {}, []
    for name, target in settings.targets.items():
        try:
            maps[name] = load_field_map(target.mapping)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return maps


class Worker:
    """One process's offer machinery: the store, the parts, the lanes, and its runs."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        client: httpx.AsyncClient,
        lanes: HttpLanes,
        maps: Mapping[str, FieldMap],
        downloads: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.owner = new_worker_id()
        self._beaten = time.monotonic()  # registered at start: its first heartbeat
        self.store = StoreThread(
            engine, window=settings.database.group_commit_ms / 1000,
            max_rows=settings.database.group_commit_rows,
        )  # fmt: skip
        self.ledger = Ledger(engine)
        self.runs = Runs(engine)
        self.attempts = AttemptHistory(engine)
        timeout = settings.sync.worker_timeout_seconds
        self.source_runs = SourceRuns(engine, worker_timeout=timeout)
        self.workers = Workers(engine)
        self._client = client
        # PageUp's integrator duties: failed PageUp calls logged for its support, and notices
        # to HR users; both written in the background through the store's thread.
        self.pageup_errors = PageUpErrors(engine, self.store, settings.error_log)
        self.notices = NoticeBook(engine, self.store, settings.notifications)
        self.sources = self._build_sources(settings)
        self.targets = {
            name: build_target(settings, name, client, maps[name]) for name in settings.targets
        }
        # Offer documents come through a client of their own: it never carries a credential.
        self.downloader = Downloader(settings.documents, downloads or client)
        self.processor = OfferProcessor(
            ledger=self.ledger, store=self.store, owner=self.owner, sources=self.sources,
            targets=self.targets, settings=settings.sync, halt_source=self._halt_source,
            notices=self.notices, keep_documents_days=settings.database.keep_source_documents_days,
            downloader=self.downloader, may_act=self.may_act,
        )  # fmt: skip
        self.pool = OfferPool(
            ledger=self.ledger, store=self.store, processor=self.processor, owner=self.owner,
            settings=settings.sync, sources=lambda: list(self.sources),
            budget_of=self._budget_of, lane_context=lanes.bind,
        )  # fmt: skip
        self.context = RunContext(
            ledger=self.ledger, runs=self.runs, sources=self.source_runs, store=self.store,
            pool=self.pool, owner=self.owner, settings=settings.sync,
            next_run_at=self._next_run_at, all_targets_resting=self._all_targets_resting,
            notices=self.notices, keep_documents_days=settings.database.keep_source_documents_days,
        )  # fmt: skip
        self._halts: set[asyncio.Task[None]] = set()
        self._running: list[SourceRun] = []
        self._stopped = False  # told to stop (``run_once``): take no run from now on

    def _build_sources(self, settings: Settings) -> dict[str, SourceParts]:
        return {
            name: build_source(settings, name, self._client, self.pageup_errors.observer(name))
            for name in settings.sources
        }

    def _budget_of(self, source: str) -> int:
        return self.settings.concurrency_of(source) if source in self.settings.sources else 0

    def _all_targets_resting(self, source: str) -> str | None:
        parts = self.sources.get(source)
        return None if parts is None else self.processor.all_resting(parts.routes.targets)

    def _next_run_at(self, source: str, due_at: datetime) -> datetime:
        return next_run_after(self.settings.schedule_of(source), due_at, datetime.now(UTC))

    def purge_attempts(self) -> int:
        """Delete attempt rows past their retention (runs on the store's thread)."""
        days = self.settings.database.attempt_history_days
        purged = self.attempts.prune(datetime.now(UTC) - timedelta(days=days))
        if purged:
            log.info("offer_attempts_purged", count=purged, older_than_days=days)
        return purged

    def run_of(self, ticket: RunTicket) -> SourceRun:
        return SourceRun(ticket, self.sources[ticket.source], self.context)

    async def beat(self) -> None:
        """This worker is alive (its leases hold)."""
        await self.store.call(self.workers.beat, self.owner)
        self._beaten = time.monotonic()

    def may_act(self) -> bool:
        """Whether this worker's last heartbeat is recent enough to call remote systems for
        the offers it holds: within half the worker timeout, after which the others are
        about to take it for dead (a stalled event loop, a database that refuses beats)."""
        return time.monotonic() - self._beaten < self.settings.sync.worker_timeout_seconds / 2

    async def hand_back(self, tickets: Sequence[RunTicket]) -> None:
        """Give back runs taken as a stop came: due again at once, for the next worker."""
        if tickets:
            await self.store.call(self.source_runs.hand_back, tickets, self.owner)
            log.info("runs_handed_back", sources=[ticket.source for ticket in tickets])

    def _halt_source(self, source: str, run_id: str, reason: str, exc: DeliveryError) -> None:
        task = asyncio.create_task(self._halt(source, run_id, reason, exc))
        self._halts.add(task)
        task.add_done_callback(self._halts.discard)

    async def _halt(self, source: str, run_id: str, reason: str, exc: DeliveryError) -> None:
        ticket = RunTicket(source, run_id, datetime.now(UTC))
        if await self.store.call(self.source_runs.halt, ticket, reason):
            log.error("run_halted", source=source, run_id=run_id, reason=reason,
                      system=exc.system)  # fmt: skip
            metrics.SOURCE_HALTED.labels(source).set(1)
            alerts.run_failed(source=source, reason=reason, system=exc.system, status=exc.status)
            self.notices.source_halted(source, reason, exc)

    def replace(self, settings: Settings, maps: Mapping[str, FieldMap]) -> None:
        """Swap in reloaded sources, targets, routes and maps (already validated). Offers in
        flight keep the parts they started with; a source's run keeps its own until it ends."""
        sources = self._build_sources(settings)
        targets = {}
        for name in settings.targets:
            old = self.targets.get(name)
            if old is not None and settings.targets[name] == self.settings.targets.get(name):
                old.field_map = maps[name]  # same target: keep its token and breaker
                targets[name] = old
            else:
                targets[name] = build_target(settings, name, self._client, maps[name])
        self.settings = settings
        self.downloader.settings = settings.documents
        self.sources, self.targets = sources, targets
        self.processor.sources, self.processor.targets = sources, targets

    async def run_once(self, names: Sequence[str] | None = None) -> list[RunReport]:
        """One run of each source named (default: all) now, whatever their schedule; a
        source another worker is running is reported, not run."""
        names = list(names or self.sources)
        tickets = await self.store.call(
            self.source_runs.take_due, self.owner, names, limit=len(names), now_due=True,
            lease_seconds=self.settings.sync.worker_timeout_seconds,
        )  # fmt: skip
        if self._stopped:  # told to stop while the database answered: begin none of them
            await self.hand_back(tickets)
            return [RunReport(t.run_id, t.source, stopped=True) for t in tickets]
        taken = {ticket.source for ticket in tickets}
        self._running = [self.run_of(ticket) for ticket in tickets]  # a stop reaches them
        pool = asyncio.create_task(self.pool.run())
        beating = asyncio.create_task(self._beat_forever())
        runs = asyncio.ensure_future(asyncio.gather(
            *(run.run() for run in self._running),
            *(self._follow(name) for name in names if name not in taken),
        ))  # fmt: skip
        try:
            either: set[asyncio.Future[Any]] = {runs, pool}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            # The lanes ended: after a stop, with the offers in flight done, and the runs end
            # by themselves; otherwise they died, and no run can end by itself.
            if pool.done() and not self._stopped:
                runs.cancel()
                await pool
            reports = await runs
        finally:
            self.pool.stop()
            beating.cancel()
            runs.cancel()
            await asyncio.gather(pool, beating, runs, return_exceptions=True)
        return list(reports)

    async def _follow(self, source: str) -> RunReport:
        """Another worker leads the source's run: help with its offers until it ends, and take
        it over if that worker dies."""
        (row,) = await self.store.call(self.source_runs.rows, [source])
        before = self.pool.processed_here[source]
        while not (self._stopped or self.pool.stopping):
            if row.lease_owner is None:
                break  # the run ended
            tickets = await self.store.call(
                self.source_runs.take_due, self.owner, [source], limit=1, now_due=True,
                lease_seconds=self.settings.sync.worker_timeout_seconds,
            )  # fmt: skip
            if self._stopped:  # told to stop while the database answered
                await self.hand_back(tickets)
                break
            if tickets:  # its leader stopped beating: lead it from here
                run = self.run_of(tickets[0])
                self._running.append(run)
                return await run.run()
            await asyncio.sleep(self.settings.sync.poll_seconds)
            (current,) = await self.store.call(self.source_runs.rows, [source])
            if current.run_id != row.run_id:
                break
            row = current
        here = self.pool.processed_here[source] - before
        return RunReport(row.run_id or "-", source, processed_here=here, led_elsewhere=True)

    def stop(self) -> None:
        """Start nothing new (``run_once``): runs end after the offers in flight."""
        self._stopped = True
        for run in self._running:
            run.stop()
        self.pool.stop()

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync.worker_timeout_seconds / 6)
            with contextlib.suppress(Exception):  # a missed beat is not fatal; many are
                await self.beat()


@asynccontextmanager
async def offer_worker(
    settings: Settings, *, maps: Mapping[str, FieldMap] | None = None
) -> AsyncIterator[Worker]:
    """Everything one process needs to run sources; closes it all on exit."""
    maps = maps or load_target_maps(settings)
    engine = open_store(settings)
    client = http_client(settings)
    lanes = HttpLanes(settings.sync.concurrency, settings.tls.ca_bundle)
    downloads = download_client(settings)
    worker = Worker(settings, engine, client, lanes, maps, downloads)
    # Everything built so far lives as long as the process: keep it out of the garbage
    # collector's scans, which otherwise stall the event loop as the heap grows.
    gc.freeze()
    try:
        with one_process_only(engine):
            await worker.store.call(worker.workers.register, worker.owner)
            # Under SQLite's lock no other worker runs: any other is a dead process, and
            # forgetting it frees its claims at once.
            if sqlite_file(engine) is not None and (
                forgotten := await worker.store.call(worker.workers.forget_all_but, worker.owner)
            ):
                log.warning("stale_workers_forgotten", count=forgotten)
            await worker.store.call(worker.source_runs.ensure, list(worker.sources))
            await worker.store.call(worker.pageup_errors.purge)
            await worker.store.call(worker.purge_attempts)
            try:
                yield worker
            finally:
                await worker.pageup_errors.drain()
                await worker.notices.drain()
                with contextlib.suppress(Exception):
                    await worker.store.call(worker.workers.remove, worker.owner)
    finally:
        worker.store.close()
        await lanes.aclose()
        await downloads.aclose()
        await client.aclose()
        engine.dispose()


def download_client(settings: Settings) -> httpx.AsyncClient:
    """The client offer documents are downloaded with: its own pool, no credentials, no
    redirects followed by httpx (``worker.sources.downloads`` follows them within limits)."""
    return new_client(settings.sync.concurrency + 2, settings.tls.ca_bundle)


def load_inbound_map(path: Path) -> FieldMap:
    """A field map for pushes and job postings: one request per record (steps are for offers)."""
    field_map = load_field_map(path)
    if field_map.multi_step:
        raise ConfigError([f"{path}: this map is one step: use fields, not steps"])
    return field_map


@asynccontextmanager
async def notice_book(
    settings: Settings, engine: Engine, given: NoticeBook | None = None
) -> AsyncIterator[NoticeBook]:
    """``given`` (the worker's), or a book of its own with its own store thread, written out
    on exit (for a command that runs a pipeline without the offer worker)."""
    if given is not None:
        yield given
        return
    store = StoreThread()
    book = NoticeBook(engine, store, settings.notifications)
    try:
        yield book
    finally:
        await book.drain()
        store.close()


@asynccontextmanager
async def inbound_delivery(
    settings: Settings, inbox: Inbox, notices: NoticeBook | None = None
) -> AsyncIterator[InboundDelivery]:
    """Delivery of stored pushes to their targets, for the sources that are enabled."""
    inbound = settings.inbound
    client = http_client(settings, inbound.delivery_concurrency)
    targets: dict[str, Target] = {}
    for source, section in (("apna", inbound.apna), ("pop", inbound.pop)):
        if section.enabled and section.target is not None:
            sink = HttpSink(section.target, client, system=f"{source}_target")
            targets[source] = Target(sink, load_inbound_map(section.target.mapping))
    engine = PopEngineClient(inbound.pop.engine, client) if inbound.pop.enabled else None
    try:
        async with notice_book(settings, inbox.engine, notices) as book:
            yield InboundDelivery(
                inbox=inbox,
                targets=targets,
                pop_engine=engine,
                settings=settings.sync,
                concurrency=inbound.delivery_concurrency,
                parked_retention_days=inbound.parked_retention_days,
                notices=book,
            )
    finally:
        await client.aclose()


@asynccontextmanager
async def job_sync(
    settings: Settings, engine: Engine | None = None, notices: NoticeBook | None = None
) -> AsyncIterator[JobSync]:
    """The job postings sync (``ats`` settings); opens its own store unless given one."""
    own_engine = engine is None
    if engine is None:
        engine = open_store(settings)
    client = http_client(settings, 2)
    ats = settings.ats
    try:
        async with notice_book(settings, engine, notices) as book:
            yield JobSync(
                ats=AtsClient(ats, client),
                ledger=JobLedger(engine, ats.source_name),
                field_map=load_inbound_map(ats.mapping),
                settings=ats,
                sync=settings.sync,
                read=job_reader(ats, client),
                notices=book,
            )
    finally:
        await client.aclose()
        if own_engine:
            engine.dispose()
