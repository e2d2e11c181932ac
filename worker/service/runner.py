"""``hirebridge run``: the long-running worker.

One process, one event loop. APScheduler drives the work: every second the worker takes the
runs of its sources that are due (sources whose run another replica leads are left to it; a
dead replica's are taken over), beats its heartbeat, and runs the job postings sync on its own
interval. The offer lanes work on the offers of every run in progress. uvicorn serves health,
readiness, metrics and the inbound pushes, and signals are handled here:

- SIGTERM/SIGINT: start no new run, offer, push or job; let those in flight finish (each offer
  through its posts and its mark), then shut the scheduler down and exit 0. A run cut short is
  due again at once, for whichever worker comes next. Past ``service.shutdown_grace_seconds``
  (or at a second signal) what is still running is cancelled, and the offers left unfinished
  are named with their state: the ledger resumes them on the next start;
- SIGHUP (or POST /-/reload from loopback): read the settings again (the config file, the
  folder of tenants, secret files) and the field maps, validate them all, and swap in the
  sources, targets, routes and maps; anything invalid is refused, logged, and the old stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from worker import alerts, metrics
from worker.application_runtime import (
    application_syncs,
    application_targets,
    load_application_maps,
)
from worker.errors import ConfigError
from worker.inbound.server import InboxWriter, inbound_routes
from worker.mapping.loader import FieldMap
from worker.notices.channels import build_channels
from worker.notices.notifier import Notifier
from worker.pipelines.applications import ApplicationSync
from worker.pipelines.inbound import InboundDelivery
from worker.pipelines.jobs import JobSync
from worker.pipelines.source_run import RunReport, SourceRun
from worker.runtime import (
    Worker,
    inbound_delivery,
    job_sync,
    load_inbound_map,
    load_target_maps,
    offer_worker,
)
from worker.service import systemd
from worker.service.check import ats_health
from worker.service.health import Liveness, Readiness, build_app, readiness_report
from worker.service.schedule import trigger_for
from worker.service.server import server_config
from worker.settings import Settings
from worker.store.inbox import Inbox

log = structlog.get_logger(__name__)
BEAT_SECONDS = 1.0
TICK_SECONDS = 1.0


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling (the service owns the signals), telling when
    it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Service:
    def __init__(
        self,
        settings: Settings,
        worker: Worker,
        inbound: InboundDelivery | None = None,
        jobs: JobSync | None = None,
        *,
        reread: Callable[[], Settings] | None = None,
        notifier: Notifier | None = None,
        applications: dict[str, ApplicationSync] | None = None,
    ) -> None:
        self._settings = settings
        self._applications = applications or {}  # source -> its applications flow
        self._worker = worker
        self._inbound = inbound
        self._jobs = jobs
        self._notifier = notifier
        self._reread = reread or (lambda: self._settings)  # the settings as they are now
        self._jobs_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()  # a second signal: do not wait for the grace period
        self._wake = asyncio.Event()  # set when a push is stored: deliver it now
        self._busy: set[asyncio.Task[Any]] = set()  # work in flight: a stop waits for it
        self._runs: dict[str, SourceRun] = {}  # source -> its run this worker leads
        self.liveness = Liveness(settings.service.heartbeat_stale_seconds)
        self.readiness = Readiness(worker.ledger, self._source_health, self._target_health)
        if jobs is not None:
            self.readiness.ats_health = lambda: ats_health(settings)
        routes = []
        if inbound is not None:
            engine = worker.engine
            writer = InboxWriter(Inbox(engine), worker.store, stored=self._wake.set)
            routes = inbound_routes(settings.inbound, writer.add)
        if settings.console.enabled:
            routes = [*routes, self._console()]
        app = build_app(self.liveness, self.readiness, self.reload, routes)
        self.server = _Server(server_config(app, settings.service))

    def _console(self) -> Any:
        from worker.console.context import ConsoleContext
        from worker.console.web import console_app

        worker = self._worker
        return console_app(
            ConsoleContext(
                settings=lambda: self._settings,
                engine=worker.engine,
                call=worker.store.call,
                sources=lambda: self._worker.sources,
                reload=self.reload,
                health=lambda: readiness_report(self.readiness),
            )
        )

    # -- scheduled work -------------------------------------------------------------------

    async def take_runs(self) -> list[asyncio.Task[None]]:
        """Start the runs of this worker's sources that are due and no live worker leads;
        returns them (the offer lanes must be running for them to end). Tracked as work in
        flight: a stop waits for it rather than cancelling it mid-call."""
        if self._stop.is_set():
            return []
        async with self._tracked():
            worker, sync = self._worker, self._settings.sync
            room = sync.max_parallel_runs - len(self._runs)
            names = [name for name in worker.sources if name not in self._runs]
            if room <= 0 or not names:
                return []
            tickets = await worker.store.call(
                worker.source_runs.take_due, worker.owner, names, limit=room,
                lease_seconds=sync.worker_timeout_seconds,
            )  # fmt: skip
            if self._stop.is_set():  # told to stop while the database answered
                await worker.hand_back(tickets)
                return []
            started = []
            for ticket in tickets:
                run = worker.run_of(ticket)
                self._runs[ticket.source] = run
                task = asyncio.create_task(self._lead(run))
                self._busy.add(task)
                task.add_done_callback(self._busy.discard)
                started.append(task)
            return started

    async def _lead(self, run: SourceRun) -> None:
        """One run, with its Sentry Crons check-ins and the source's oldest-offer gauge."""
        source = run.report.source
        sentry = self._settings.sentry
        slug = alerts.monitor_slug(sentry.cron_monitor_slug, source, len(self._settings.sources))
        config = alerts.monitor_config(self._settings.schedule_of(source), sentry)
        check_in = alerts.check_in(slug, "in_progress", config)
        report: RunReport | None = None
        try:
            report = await run.run()
        finally:
            self._runs.pop(source, None)
            status = "ok" if report is not None and not report.halted else "error"
            alerts.check_in(slug, status, config, check_in)
        oldest = await self._worker.store.call(self._worker.ledger.oldest_waiting_since)
        since = oldest.get(source)
        age = (datetime.now(UTC) - since).total_seconds() if since else 0.0
        metrics.OLDEST_WAITING.labels(source).set(max(0.0, age))

    async def beat(self) -> None:
        if self._stop.is_set():
            return
        async with self._tracked():
            try:
                await self._worker.beat()
            except Exception as exc:  # the database may be down: say so, keep trying
                log.error("heartbeat_failed", error=type(exc).__name__)

    async def sync_jobs(self) -> None:
        """One scheduled job postings run (ats.interval_seconds)."""
        if self._stop.is_set() or self._jobs is None:
            return
        async with self._jobs_lock, self._tracked():
            await self._jobs.run()

    async def sync_applications(self, source: str) -> None:
        """One scheduled run of a source's applications flow (its own schedule)."""
        sync = self._applications.get(source)
        if self._stop.is_set() or sync is None:
            return
        async with self._tracked():
            try:
                await sync.run()
            except Exception as exc:  # the database may be down: say so, keep the schedule
                log.error("application_run_failed", source=source, error=type(exc).__name__)

    async def notify(self) -> None:
        """Send the notices that are due (notifications.poll_seconds), off the offer lanes."""
        if self._stop.is_set() or self._notifier is None:
            return
        async with self._tracked():
            try:
                await self._notifier.send_due()
            except Exception as exc:  # the database may be down: say so, keep trying
                log.error("notifier_failed", error=type(exc).__name__)

    async def housekeeping(self) -> None:
        """Hourly: delete error log rows, notices and offer attempts past their retention."""
        if self._stop.is_set():
            return
        worker = self._worker
        async with self._tracked():
            try:
                await worker.store.call(worker.pageup_errors.purge)
                await worker.store.call(worker.notices.purge)
                # Off the store's thread: its scan for surplus rows must not hold up the
                # offers' writes (a read; the deletes are short).
                await asyncio.to_thread(worker.purge_attempts)
            except Exception as exc:  # the database may be down: say so, keep trying
                log.error("housekeeping_failed", error=type(exc).__name__)

    @contextlib.asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        """Count the current task as work in flight, which a stop waits for."""
        task = asyncio.current_task()
        assert task is not None
        self._busy.add(task)
        try:
            yield
        finally:
            self._busy.discard(task)

    async def deliver_pushes(self) -> None:
        """Deliver stored pushes as they arrive, and due retries every poll_seconds."""
        assert self._inbound is not None
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await self._inbound.deliver_due()
            except Exception as exc:  # the database may be down: say so, keep trying
                log.error("inbound_delivery_loop_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.inbound.poll_seconds)

    # -- health ---------------------------------------------------------------------------

    def _source_health(self) -> dict[str, str]:
        return {
            name: "token refused" if parts.pageup.tokens.refused else "ok"
            for name, parts in self._worker.sources.items()
        }

    def _target_health(self) -> dict[str, str]:
        health = {}
        for name, parts in self._worker.targets.items():
            resting = parts.breaker.resting_for()
            health[name] = f"resting {resting:.0f} s: {parts.breaker.reason}" if resting else "ok"
        return health

    # -- reload ---------------------------------------------------------------------------

    async def reload(self) -> tuple[bool, str]:
        """Read the settings and every map again; swap them in only if all are valid."""
        try:
            settings = await asyncio.to_thread(self._reread)
            maps = await asyncio.to_thread(load_target_maps, settings)
            inbound = settings.inbound
            inbound_maps = [
                (name, await asyncio.to_thread(load_inbound_map, section.target.mapping))
                for name, section in (("apna", inbound.apna), ("pop", inbound.pop))
                if self._inbound is not None and section.enabled and section.target
            ]
            job_map = None
            if self._jobs is not None:
                job_map = await asyncio.to_thread(load_inbound_map, settings.ats.mapping)
            app_maps = {}
            if self._applications:
                app_maps = await asyncio.to_thread(load_application_maps, settings)
        except ConfigError as exc:
            log.error("mapping_reload_refused", problems=exc.problems)
            return False, "; ".join(exc.problems)
        for section in ("database", "service", "inbound", "ats", "sentry", "logging", "tls",
                        "notifications", "error_log"):  # fmt: skip
            if getattr(settings, section) != getattr(self._settings, section):
                log.warning("reload_needs_restart", section=section)
        if self._jobs is not None and job_map is not None:
            self._jobs.replace_map(job_map)
        self._reload_applications(settings, app_maps)
        for name, inbound_map in inbound_maps:
            assert self._inbound is not None
            self._inbound.replace_map(name, inbound_map)
        self._worker.replace(settings, maps)
        await self._worker.store.call(self._worker.source_runs.ensure, list(settings.sources))
        self._settings = settings
        self.readiness.map_problem = None
        versions = ", ".join(f"{name} {m.version}" for name, m in sorted(maps.items()))
        log.info("mapping_reloaded", version=versions, sources=len(settings.sources),
                 targets=len(settings.targets))  # fmt: skip
        return True, versions

    def _reload_applications(self, settings: Settings, maps: dict[str, FieldMap]) -> None:
        """Swap in each running flow's job list and its targets' maps. A flow turned on, or
        given other targets, waits for the next start: said, not half done."""
        for name, source in settings.sources.items():
            sync = self._applications.get(name)
            wanted = set(source.applications.targets) if source.applications.enabled else set()
            if wanted and (sync is None or wanted != set(sync.targets)):
                log.warning("reload_needs_restart", section=f"sources.{name}.applications")
        for name, sync in self._applications.items():
            if name in settings.sources:
                sync.settings = settings.sources[name].applications
            for target in sync.targets.values():
                target.field_map = maps.get(target.name, target.field_map)

    # -- stopping -------------------------------------------------------------------------

    def request_stop(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stop.is_set():
            log.warning("shutdown_forced", signal=name)
            self._force.set()
            return
        log.info("shutdown_requested", signal=name)
        self._stop.set()
        for run in self._runs.values():
            run.stop()
        self._worker.pool.stop()
        if self._inbound is not None:
            self._inbound.stop()
        if self._jobs is not None:
            self._jobs.stop()
        for sync in self._applications.values():
            sync.stop()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        server_task = asyncio.create_task(self.server.serve())
        listening = asyncio.create_task(self.server.listening.wait())
        await asyncio.wait({server_task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not self.server.listening.is_set():  # uvicorn gave up (port taken...)
            listening.cancel()
            raise ConfigError([f"service: cannot listen on {self._settings.service.host}:"
                               f"{self._settings.service.port}"])  # fmt: skip
        scheduler = self._scheduler(loop)
        scheduler.start()
        pool = asyncio.create_task(self._worker.pool.run())
        deliveries = asyncio.create_task(self.deliver_pushes()) if self._inbound else None
        self.liveness.scheduling = True
        systemd.notify("READY=1")
        log.info("service_started", port=self.bound_port(), sources=len(self._worker.sources),
                 targets=len(self._worker.targets))  # fmt: skip
        while not self._stop.is_set():
            self.liveness.beat()
            systemd.notify("WATCHDOG=1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), BEAT_SECONDS)
        systemd.notify("STOPPING=1")
        # No new run starts; the runs in progress go on. APScheduler's shutdown cancels the job
        # coroutines it is running, so it comes only once they have finished (or been given up).
        scheduler.pause()
        self._wake.set()
        # A job the scheduler started just before the pause has not run its first step yet:
        # let it, so that it either returns at once (it sees the stop) or counts itself in.
        await asyncio.sleep(0)
        in_flight = {*self._busy, pool, *([deliveries] if deliveries is not None else [])}
        await self._drain(in_flight)
        scheduler.shutdown(wait=False)
        self.liveness.scheduling = False
        self.server.should_exit = True
        await server_task
        alerts.flush()
        log.info("service_stopped")
        return 0

    def _scheduler(self, loop: asyncio.AbstractEventLoop) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(event_loop=loop)
        now = datetime.now(UTC)
        every = {"max_instances": 1, "coalesce": True, "next_run_time": now}
        scheduler.add_job(self.take_runs, "interval", seconds=TICK_SECONDS, id="source_runs",
                          **every)  # fmt: skip
        beat = self._settings.sync.worker_timeout_seconds / 6
        scheduler.add_job(self.beat, "interval", id="heartbeat", seconds=beat, **every)
        if self._jobs is not None:
            scheduler.add_job(self.sync_jobs, "interval", id="job_postings",
                              seconds=self._settings.ats.interval_seconds, **every)  # fmt: skip
        for source, sync in self._applications.items():
            schedule = sync.settings.schedule or self._settings.schedule_of(source)
            scheduler.add_job(self.sync_applications, trigger_for(schedule), args=[source],
                              id=f"applications_{source}", max_instances=1, coalesce=True,
                              next_run_time=now,
                              misfire_grace_time=int(schedule.misfire_grace_seconds))  # fmt: skip
        if self._notifier is not None:
            poll = self._settings.notifications.poll_seconds
            scheduler.add_job(self.notify, "interval", id="notices", seconds=poll, **every)
        scheduler.add_job(self.housekeeping, "interval", id="housekeeping", hours=1,
                          **every)  # fmt: skip
        return scheduler

    async def _drain(self, in_flight: set[asyncio.Task[Any]]) -> None:
        """Wait for the work in flight, within the grace period; past it, cancel and report.

        The heartbeat and systemd's watchdog are fed meanwhile: a long drain is not a hang.
        """
        grace = self._settings.service.shutdown_grace_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        pending = {task for task in in_flight if not task.done()}
        if pending:
            log.info("shutdown_waiting", tasks_in_flight=len(pending), grace_seconds=grace)
        while pending and not self._force.is_set() and loop.time() < deadline:
            self.liveness.beat()
            systemd.notify("WATCHDOG=1")
            _, pending = await asyncio.wait(
                pending, timeout=min(BEAT_SECONDS, max(0.0, deadline - loop.time()))
            )
            pending |= {task for task in self._busy if not task.done()}  # a run's last steps
        if pending:
            await self._give_up(pending, grace)

    async def _give_up(self, pending: set[asyncio.Task[Any]], grace: float) -> None:
        """Cancel what did not finish in time and say exactly what was left, and in what state.

        Nothing is lost: a target left ``posting`` is resent with the same idempotency key, an
        offer whose targets all accepted is only marked, on the next start (here or on another
        replica, since the claims are released).
        """
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        offers = await self._worker.processor.release_unfinished()
        pushes = await self._inbound.release_unfinished() if self._inbound is not None else 0
        left = [f"{o.source}/{o.offer_id}: {_state(o)}" for o in offers]
        log.error(
            "shutdown_grace_exceeded",
            grace_seconds=grace,
            forced=self._force.is_set(),
            offers_unfinished=left,
            pushes_unfinished=pushes,
        )
        alerts.shutdown_incomplete(grace_seconds=grace, offers=left, pushes=pushes)

    def bound_port(self) -> int | None:
        if not self.server.servers or not self.server.servers[0].sockets:
            return None
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port


def _state(offer: Any) -> str:
    targets = ", ".join(f"{t.target} {t.status}" for t in offer.targets)
    return f"{offer.status} at {offer.stage or '-'}" + (f" ({targets})" if targets else "")


async def run_service(settings: Settings, reread: Callable[[], Settings] | None = None) -> int:
    alerts.init_sentry(settings.sentry)
    started = time.monotonic()
    async with offer_worker(settings) as worker, contextlib.AsyncExitStack() as stack:
        delivery = None
        if settings.inbound.apna.enabled or settings.inbound.pop.enabled:
            inbox = Inbox(worker.engine)
            delivery = await stack.enter_async_context(
                inbound_delivery(settings, inbox, worker.notices)
            )
        jobs = None
        if settings.ats.enabled:
            jobs = await stack.enter_async_context(
                job_sync(settings, worker.engine, worker.notices)
            )
        applications = None
        if application_targets(settings):
            applications = await stack.enter_async_context(application_syncs(
                settings, worker.engine, worker.notices, worker.pageup_errors, worker.owner
            ))  # fmt: skip
        notifier = None
        if channels := build_channels(settings.notifications):
            notifier = Notifier(worker.notices.notices, worker.store, channels,
                                settings.notice_settings, settings.notice_timezone)  # fmt: skip
        log.debug("service_built", seconds=round(time.monotonic() - started, 3))
        service = Service(settings, worker, delivery, jobs, reread=reread, notifier=notifier,
                          applications=applications)  # fmt: skip
        return await service.serve()
