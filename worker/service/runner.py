"""``hirebridge run``: the long-running worker.

One process, one event loop: APScheduler runs the offer sync on its schedule (one run at a
time, missed runs coalesced), uvicorn serves health, readiness and metrics, and signals are
handled here:

- SIGTERM/SIGINT: schedule no more runs, start no new offer, let the offers in flight finish
  their step (each step is recorded before the next), exit 0 within the grace period;
- SIGHUP (or POST /-/reload from loopback): validate the field map and swap it in; an invalid
  map is refused, logged, and the old one stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from worker import alerts, metrics
from worker.errors import ConfigError
from worker.inbound.server import InboxWriter, inbound_routes
from worker.mapping.loader import load_field_map
from worker.pipelines.inbound import InboundDelivery
from worker.pipelines.jobs import JobSync
from worker.runtime import (
    OfferSyncParts,
    inbound_delivery,
    job_sync,
    load_inbound_map,
    offer_sync,
)
from worker.service import systemd
from worker.service.check import ats_health
from worker.service.health import Liveness, Readiness, build_app
from worker.service.schedule import trigger_for
from worker.service.server import server_config
from worker.settings import Settings
from worker.store.inbox import Inbox

log = structlog.get_logger(__name__)
BEAT_SECONDS = 1.0


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
        parts: OfferSyncParts,
        inbound: InboundDelivery | None = None,
        jobs: JobSync | None = None,
    ) -> None:
        self._settings = settings
        self._parts = parts
        self._inbound = inbound
        self._jobs = jobs
        self._jobs_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # set when a push is stored: deliver it now
        self._run_lock = asyncio.Lock()
        self.liveness = Liveness(settings.service.heartbeat_stale_seconds)
        self.readiness = Readiness(parts.ledger, lambda: parts.pageup.tokens.refused)
        if jobs is not None:
            self.readiness.ats_health = lambda: ats_health(settings)
        routes = []
        if inbound is not None:
            engine = parts.ledger.engine
            writer = InboxWriter(
                Inbox(engine), on_loop=engine.dialect.name == "sqlite", stored=self._wake.set
            )
            routes = inbound_routes(settings.inbound, writer.add)
        app = build_app(self.liveness, self.readiness, self.reload, routes)
        self.server = _Server(server_config(app, settings.service))

    async def sync_once(self) -> None:
        """One scheduled run, with its metrics."""
        if self._stop.is_set():
            return
        sentry = self._settings.sentry
        config = alerts.monitor_config(self._settings.service.schedule, sentry)
        async with self._run_lock:
            started = time.monotonic()
            check_in = alerts.check_in(sentry.cron_monitor_slug, "in_progress", config)
            try:
                report = await self._parts.sync.run()
            except Exception:
                alerts.check_in(sentry.cron_monitor_slug, "error", config, check_in)
                raise
            # Offer failures alert on their own; the monitor says whether runs happen and end.
            status = "error" if report.halted else "ok"
            alerts.check_in(sentry.cron_monitor_slug, status, config, check_in)
            metrics.RUN_DURATION.observe(time.monotonic() - started)
            metrics.RUNS.labels(report.outcome).inc()
            if report.ok:
                metrics.LAST_SUCCESS.set(time.time())
            oldest = await asyncio.to_thread(self._parts.ledger.oldest_waiting_since)
            age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
            metrics.OLDEST_WAITING.set(max(0.0, age))

    async def sync_jobs(self) -> None:
        """One scheduled job postings run (ats.interval_seconds)."""
        if self._stop.is_set() or self._jobs is None:
            return
        async with self._jobs_lock:
            await self._jobs.run()

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

    async def reload(self) -> tuple[bool, str]:
        """Validate and swap the field maps; keep the old ones if any new one is invalid."""
        inbound = self._settings.inbound
        sources = [(name, section.target.mapping) for name, section in
                   (("apna", inbound.apna), ("pop", inbound.pop))
                   if self._inbound is not None and section.enabled and section.target]  # fmt: skip
        try:
            field_map = await asyncio.to_thread(load_field_map, self._settings.hris.mapping)
            inbound_maps = [
                (name, await asyncio.to_thread(load_inbound_map, path)) for name, path in sources
            ]
            job_map = None
            if self._jobs is not None:
                job_map = await asyncio.to_thread(load_inbound_map, self._settings.ats.mapping)
        except ConfigError as exc:
            log.error("mapping_reload_refused", problems=exc.problems)
            return False, "; ".join(exc.problems)
        if self._jobs is not None and job_map is not None:
            self._jobs.replace_map(job_map)
        for name, inbound_map in inbound_maps:
            assert self._inbound is not None
            self._inbound.replace_map(name, inbound_map)
        self._parts.sync.replace_map(field_map)
        self.readiness.map_problem = None
        log.info("mapping_reloaded", version=field_map.version, fields=len(field_map.rules))
        return True, field_map.version

    def request_stop(self, signum: int) -> None:
        if not self._stop.is_set():
            log.info("shutdown_requested", signal=signal.Signals(signum).name)
            self._stop.set()
            self._parts.sync.stop()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        schedule = self._settings.service.schedule
        scheduler = AsyncIOScheduler(event_loop=loop)
        scheduler.add_job(
            self.sync_once, trigger_for(schedule), id="offer_sync", max_instances=1,
            coalesce=True, misfire_grace_time=int(schedule.misfire_grace_seconds),
            next_run_time=datetime.now(UTC),
        )  # fmt: skip
        server_task = asyncio.create_task(self.server.serve())
        listening = asyncio.create_task(self.server.listening.wait())
        await asyncio.wait({server_task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not self.server.listening.is_set():  # uvicorn gave up (port taken...)
            listening.cancel()
            raise ConfigError([f"service: cannot listen on {self._settings.service.host}:"
                               f"{self._settings.service.port}"])  # fmt: skip
        if self._jobs is not None:
            scheduler.add_job(
                self.sync_jobs, "interval", seconds=self._settings.ats.interval_seconds,
                id="job_postings", max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
            )  # fmt: skip
        scheduler.start()
        deliveries = asyncio.create_task(self.deliver_pushes()) if self._inbound else None
        self.liveness.scheduling = True
        systemd.notify("READY=1")
        log.info("service_started", port=self.bound_port(), schedule=str(trigger_for(schedule)))
        while not self._stop.is_set():
            self.liveness.beat()
            systemd.notify("WATCHDOG=1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), BEAT_SECONDS)
        systemd.notify("STOPPING=1")
        scheduler.shutdown(wait=False)
        self.liveness.scheduling = False
        self._wake.set()
        await self._drain(deliveries)
        self.server.should_exit = True
        await server_task
        alerts.flush()
        log.info("service_stopped")
        return 0

    async def _drain(self, deliveries: asyncio.Task[None] | None) -> None:
        grace = self._settings.service.shutdown_grace_seconds
        try:
            async with asyncio.timeout(grace):
                async with self._run_lock, self._jobs_lock:
                    pass
                if deliveries is not None:
                    await deliveries
        except TimeoutError:
            log.error("shutdown_grace_exceeded", grace_seconds=grace)

    def bound_port(self) -> int | None:
        if not self.server.servers or not self.server.servers[0].sockets:
            return None
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port


async def run_service(settings: Settings) -> int:
    alerts.init_sentry(settings.sentry, tenant=settings.pageup.tenant_id)
    async with offer_sync(settings) as parts, contextlib.AsyncExitStack() as stack:
        engine = parts.ledger.engine
        delivery = None
        if settings.inbound.apna.enabled or settings.inbound.pop.enabled:
            delivery = await stack.enter_async_context(inbound_delivery(settings, Inbox(engine)))
        jobs = None
        if settings.ats.enabled:
            jobs = await stack.enter_async_context(job_sync(settings, engine))
        return await Service(settings, parts, delivery, jobs).serve()
