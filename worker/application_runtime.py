"""Building the applications flow from settings: per source with ``applications.enabled``, a
PageUp client, its checks, and the targets it delivers to with their applications maps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine

from worker.errors import ConfigError
from worker.mapping.loader import FieldMap, load_field_map
from worker.notices.book import NoticeBook
from worker.pipelines.applications import ApplicationSync, AppTarget
from worker.remote.http import Observer
from worker.settings import Settings
from worker.sinks.http import HttpSink
from worker.sources.applications import ApplicationChecks
from worker.sources.offer_document import DocumentChecks
from worker.sources.pageup import PageUpClient
from worker.store.applications import ApplicationLedger
from worker.store.thread import StoreThread
from worker.store.workers import new_worker_id
from worker.support.errorlog import PageUpErrors


def load_application_map(path: Path) -> FieldMap:
    """An applications map: one request per application, with ``find:`` and its ``update``, so
    that a changed application updates the target's record instead of creating a second one."""
    field_map = load_field_map(path, choosing=True)
    problems = []
    if field_map.multi_step:
        problems.append(f"{path}: an applications map is one step: use fields, not steps")
    if field_map.documents is not None:
        problems.append(f"{path}: an applications map sends no documents")
    if not field_map.multi_step and field_map.steps[0].find is None:
        problems.append(
            f"{path}: an applications map needs find: (path, id, update), so that a changed "
            "application updates the target's record instead of creating a second one"
        )
    if problems:
        raise ConfigError(problems)
    return field_map


def application_targets(settings: Settings) -> list[str]:
    """The targets any enabled source sends applications to."""
    names = [
        target
        for source in settings.sources.values()
        if source.applications.enabled
        for target in source.applications.targets
    ]
    return list(dict.fromkeys(names))


def load_application_maps(settings: Settings) -> dict[str, FieldMap]:
    """Each applications target's map; ConfigError lists the problems of all of them."""
    maps, problems = {}, []
    for name in application_targets(settings):
        path = settings.targets[name].applications_mapping
        assert path is not None  # the settings refuse a target without one
        try:
            maps[name] = load_application_map(path)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return maps


def build_syncs(
    settings: Settings, engine: Engine, client: httpx.AsyncClient, notices: NoticeBook,
    observer: Callable[[str], Observer | None], maps: dict[str, FieldMap], owner: str,
) -> dict[str, ApplicationSync]:  # fmt: skip
    """One ApplicationSync per source with the flow on."""
    ledger = ApplicationLedger(engine)
    targets = {
        name: AppTarget(name, HttpSink(settings.targets[name], client, system=name), maps[name])
        for name in maps
    }
    syncs = {}
    for name, source in settings.sources.items():
        if not source.applications.enabled:
            continue
        checks = ApplicationChecks(source.applications.ids, DocumentChecks(source.document_ids))
        syncs[name] = ApplicationSync(
            source=name, pageup=PageUpClient(source, client, observer(name)), checks=checks,
            settings=source.applications,
            targets={t: targets[t] for t in source.applications.targets}, ledger=ledger,
            sync=settings.sync, notices=notices, owner=owner,
        )  # fmt: skip
    return syncs


@asynccontextmanager
async def application_syncs(
    settings: Settings, engine: Engine | None = None, notices: NoticeBook | None = None,
    errors: PageUpErrors | None = None, owner: str | None = None,
) -> AsyncIterator[dict[str, ApplicationSync]]:  # fmt: skip
    """The applications flow of every source that has it on; opens its own store, notice book
    and error log writer unless given the worker's. ``owner``: the worker's id in the runs'
    leases (a command gets one of its own)."""
    from worker.runtime import http_client, notice_book, open_store

    maps = load_application_maps(settings)
    own_engine = engine is None
    if engine is None:
        engine = open_store(settings)
    client = http_client(settings, 4)
    store = StoreThread() if errors is None else None
    log = errors if store is None else PageUpErrors(engine, store, settings.error_log)
    assert log is not None
    try:
        async with notice_book(settings, engine, notices) as book:
            yield build_syncs(settings, engine, client, book, log.observer, maps,
                              owner or new_worker_id())  # fmt: skip
    finally:
        if errors is None:
            await log.drain()
        if store is not None:
            store.close()
        await client.aclose()
        if own_engine:
            engine.dispose()
