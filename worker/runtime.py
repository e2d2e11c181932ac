"""Building the offer sync from settings: HTTP client, PageUp, field map, HRIS sink, ledger."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog
from sqlalchemy import Engine

from worker.errors import ConfigError
from worker.inbound.pop import PopEngineClient
from worker.mapping.loader import FieldMap, load_field_map
from worker.pipelines.inbound import InboundDelivery, Target
from worker.pipelines.jobs import JobSync, job_reader
from worker.pipelines.offers import OfferSync
from worker.remote.lanes import HttpLanes, new_client
from worker.settings import Settings
from worker.sinks.ats import AtsClient
from worker.sinks.http import HttpSink
from worker.sources.pageup import PageUpClient
from worker.store.db import create_store_engine, migrate, one_process_only, sqlite_file
from worker.store.inbox import Inbox
from worker.store.jobs import JobLedger
from worker.store.ledger import Ledger

log = structlog.get_logger(__name__)


def open_ledger(settings: Settings) -> tuple[Engine, Ledger]:
    """The state store, migrated to the newest schema."""
    engine = create_store_engine(settings.database)
    migrate(engine)
    return engine, Ledger(engine, settings.pageup.tenant_id)


def http_client(settings: Settings, concurrency: int | None = None) -> httpx.AsyncClient:
    """The client for calls made outside a worker lane (listing the queue, previews)."""
    lanes = settings.sync.concurrency if concurrency is None else concurrency
    return new_client(lanes * 3 + 4, settings.tls.ca_bundle)


@dataclass
class OfferSyncParts:
    sync: OfferSync
    ledger: Ledger
    field_map: FieldMap
    pageup: PageUpClient


def load_inbound_map(path: Path) -> FieldMap:
    """A field map for pushes and job postings: one request per record (steps are for offers)."""
    field_map = load_field_map(path)
    if field_map.multi_step:
        raise ConfigError([f"{path}: this map is one step: use fields, not steps"])
    return field_map


@asynccontextmanager
async def inbound_delivery(settings: Settings, inbox: Inbox) -> AsyncIterator[InboundDelivery]:
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
        yield InboundDelivery(
            inbox=inbox,
            targets=targets,
            pop_engine=engine,
            settings=settings.sync,
            concurrency=inbound.delivery_concurrency,
            parked_retention_days=inbound.parked_retention_days,
        )
    finally:
        await client.aclose()


@asynccontextmanager
async def job_sync(settings: Settings, engine: Engine | None = None) -> AsyncIterator[JobSync]:
    """The job postings sync (``ats`` settings); opens its own store unless given one."""
    own_engine = engine is None
    if engine is None:
        engine, _ = open_ledger(settings)
    client = http_client(settings, 2)
    ats = settings.ats
    try:
        yield JobSync(
            ats=AtsClient(ats, client),
            ledger=JobLedger(engine, ats.source_name),
            field_map=load_inbound_map(ats.mapping),
            settings=ats,
            sync=settings.sync,
            read=job_reader(ats, client),
        )
    finally:
        await client.aclose()
        if own_engine:
            engine.dispose()


@asynccontextmanager
async def offer_sync(
    settings: Settings, *, field_map: FieldMap | None = None
) -> AsyncIterator[OfferSyncParts]:
    """Everything one process needs to run offer syncs; closes it all on exit."""
    field_map = field_map or load_field_map(settings.hris.mapping)
    engine, ledger = open_ledger(settings)
    client = http_client(settings)
    lanes = HttpLanes(settings.sync.concurrency, settings.tls.ca_bundle)
    pageup = PageUpClient(settings.pageup, client)
    sync = OfferSync(
        pageup=pageup,
        sink=HttpSink(settings.hris, client),
        field_map=field_map,
        ledger=ledger,
        tenant=settings.pageup.tenant_id,
        settings=settings.sync,
        worker_context=lanes.bind,
        keep_documents_days=settings.database.keep_source_documents_days,
    )
    # Everything built so far lives as long as the process: keep it out of the garbage
    # collector's scans, which otherwise stall the event loop as the heap grows.
    gc.freeze()
    try:
        with one_process_only(engine):
            # Under SQLite's lock no other worker runs: any claim left is a dead process's.
            if sqlite_file(engine) is not None and (freed := ledger.release_all_leases()):
                log.warning("stale_leases_released", count=freed)
            yield OfferSyncParts(sync, ledger, field_map, pageup)
    finally:
        sync.close()
        await lanes.aclose()
        await client.aclose()
        engine.dispose()
