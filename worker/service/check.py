"""``hirebridge check``: can this deployment work? Settings, maps, database, PageUp, HRIS, ATS.

Writes nothing: no migration, no post, no mark. Each check says what is wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text

from worker.errors import HirebridgeError
from worker.mapping.loader import load_field_map
from worker.remote.auth import OutboundAuth
from worker.remote.http import exchange
from worker.runtime import http_client
from worker.service.account import account_lists
from worker.settings import Settings
from worker.sinks.ats import AtsClient
from worker.sources.pageup import PageUpClient
from worker.store.db import create_store_engine


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


async def run_checks(settings: Settings) -> list[Check]:
    checks = [Check("settings", True, "loaded")]
    steps: list[tuple[str, Callable[[Settings], Awaitable[str]]]] = [
        ("field map", _field_map), ("database", _database),
        ("pageup token", _pageup_token), ("hris", _hris),
    ]  # fmt: skip
    if _has_account_checks(settings):
        steps.append(("hris account lists", _account_lists))
    if settings.inbound.apna.enabled or settings.inbound.pop.enabled:
        steps.append(("inbound maps", _inbound_maps))
    if settings.ats.enabled:
        steps += [("ats job map", _ats_map), ("ats health", ats_health)]
    for name, step in steps:
        try:
            checks.append(Check(name, True, await step(settings)))
        except HirebridgeError as exc:
            checks.append(Check(name, False, str(exc)))
        except Exception as exc:  # a driver or OS error: name it, do not crash the check
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
    return checks


async def _field_map(settings: Settings) -> str:
    field_map = load_field_map(settings.hris.mapping)
    return f"{settings.hris.mapping} ({len(field_map.rules)} fields, version {field_map.version})"


def _has_account_checks(settings: Settings) -> bool:
    try:
        return bool(load_field_map(settings.hris.mapping).checks)
    except HirebridgeError:
        return False  # the field map check reports it


async def _account_lists(settings: Settings) -> str:
    return await account_lists(settings, load_field_map(settings.hris.mapping))


async def _database(settings: Settings) -> str:
    def ping() -> str:
        engine = create_store_engine(settings.database)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return f"{engine.dialect.name} reachable"
        finally:
            engine.dispose()

    return await asyncio.to_thread(ping)


async def _pageup_token(settings: Settings) -> str:
    async with http_client(settings, 1) as client:
        await PageUpClient(settings.pageup, client).tokens.header()
    return f"token granted by {settings.pageup.resolved_token_url}"


async def _hris(settings: Settings) -> str:
    """Any HTTP answer but a refusal of our credentials, a 404 or a 5xx means reachable."""
    async with http_client(settings, 1) as client:
        auth = await OutboundAuth(
            settings.hris.auth, client, system="hris", retry=settings.hris.retry
        ).headers()
        reply = await exchange(
            client, "HEAD", settings.hris.url, system="hris", stage="check",
            timeout=settings.hris.retry.timeout_seconds, headers={**settings.hris.headers, **auth},
        )  # fmt: skip
    if reply.status in (401, 403):
        raise ValueError(f"HTTP {reply.status}: the HRIS refused our credentials")
    if reply.status == 404 or reply.status >= 500:
        raise ValueError(f"HTTP {reply.status} from {settings.hris.url}")
    return f"{settings.hris.url} answers (HTTP {reply.status} to HEAD)"


async def _ats_map(settings: Settings) -> str:
    field_map = load_field_map(settings.ats.mapping)
    return f"{settings.ats.mapping} ({len(field_map.rules)} fields, version {field_map.version})"


async def ats_health(settings: Settings) -> str:
    """The ATS's health endpoint says healthy (also part of readiness)."""
    async with http_client(settings, 1) as client:
        data = await AtsClient(settings.ats, client).health()
    services = data.get("services")
    return f"healthy ({services})" if services else "healthy"


async def _inbound_maps(settings: Settings) -> str:
    from worker.runtime import load_inbound_map

    inbound, loaded = settings.inbound, []
    for name, section in (("apna", inbound.apna), ("pop", inbound.pop)):
        if section.enabled and section.target is not None:
            field_map = load_inbound_map(section.target.mapping)
            loaded.append(f"{name}: {section.target.mapping.name} ({field_map.version})")
    return ", ".join(loaded)
