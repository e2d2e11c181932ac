"""Building the offer sync from settings: HTTP client, PageUp, field map, HRIS sink, ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import structlog
from sqlalchemy import Engine

from worker.mapping.loader import FieldMap, load_field_map
from worker.pipelines.offers import OfferSync
from worker.remote.lanes import HttpLanes, new_client
from worker.settings import Settings
from worker.sinks.http import HttpSink
from worker.sources.pageup import PageUpClient
from worker.store.db import create_store_engine, migrate, one_process_only, sqlite_file
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
        ledger_on_loop=engine.dialect.name == "sqlite",
        keep_documents_days=settings.database.keep_source_documents_days,
    )
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
