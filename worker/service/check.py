"""``hirebridge check``: can this deployment work? Settings, maps, database, PageUp, HRIS, ATS,
notification channels.

Writes nothing: no migration, no post, no mark (``--test-notice`` sends each channel a test
message, nothing else). Each check says what is wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import inspect, text

from worker.errors import HirebridgeError
from worker.mapping.loader import load_field_map
from worker.remote.auth import OutboundAuth
from worker.remote.http import exchange, route_of
from worker.runtime import http_client
from worker.service.account import account_lists
from worker.settings import Settings
from worker.sinks.ats import AtsClient
from worker.sources.pageup import PageUpClient
from worker.store.db import create_store_engine
from worker.store.notices import ChannelState, NoticeStore


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


async def run_checks(settings: Settings, *, test_notice: bool = False) -> list[Check]:
    """Every check; ``test_notice`` also sends a test message to each notification channel."""
    checks = [Check("settings", True, _shape(settings))]
    steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("database", lambda: _database(settings))
    ]
    for name in settings.sources:
        steps.append((f"source {name}", partial(_pageup_token, settings, name)))
    for name in settings.targets:
        steps.append((f"map {name}", partial(_field_map, settings, name)))
        steps.append((f"target {name}", partial(_target, settings, name)))
        if _has_account_checks(settings, name):
            steps.append((f"account {name}", partial(_account_lists, settings, name)))
        if settings.targets[name].applications_mapping is not None:
            steps.append((f"applications map {name}", partial(_application_map, settings, name)))
    if settings.inbound.apna.enabled or settings.inbound.pop.enabled:
        steps.append(("inbound maps", lambda: _inbound_maps(settings)))
    if settings.ats.enabled:
        steps += [("ats job map", lambda: _ats_map(settings)),
                  ("ats health", lambda: ats_health(settings))]  # fmt: skip
    for name, channel in settings.notifications.channels.items():
        if channel.enabled:
            steps.append((f"channel {name}", partial(_channel, settings, name, test_notice)))
    for name, step in steps:
        try:
            checks.append(Check(name, True, await step()))
        except HirebridgeError as exc:
            checks.append(Check(name, False, str(exc)))
        except Exception as exc:  # a driver or OS error: name it, do not crash the check
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
    return checks


def _shape(settings: Settings) -> str:
    return (f"loaded: {len(settings.sources)} source(s), {len(settings.targets)} target(s), "
            f"{len(settings.routes)} route(s)")  # fmt: skip


async def _field_map(settings: Settings, name: str) -> str:
    path = settings.targets[name].mapping
    field_map = load_field_map(path)
    return f"{path} ({len(field_map.rules)} fields, version {field_map.version})"


async def _application_map(settings: Settings, name: str) -> str:
    from worker.application_runtime import load_application_map

    path = settings.targets[name].applications_mapping
    assert path is not None
    field_map = load_application_map(path)
    chooses = ", when: chooses" if field_map.when is not None else ""
    return f"{path} ({len(field_map.rules)} fields{chooses}, version {field_map.version})"


def _has_account_checks(settings: Settings, name: str) -> bool:
    try:
        return bool(load_field_map(settings.targets[name].mapping).checks)
    except HirebridgeError:
        return False  # the field map check reports it


async def _account_lists(settings: Settings, name: str) -> str:
    field_map = load_field_map(settings.targets[name].mapping)
    return await account_lists(settings, name, field_map)


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


async def _pageup_token(settings: Settings, name: str) -> str:
    source = settings.sources[name]
    async with http_client(settings, 1) as client:
        await PageUpClient(source, client).tokens.header()
    return f"token granted by {source.resolved_token_url} (tenant {source.tenant_id})"


async def _target(settings: Settings, name: str) -> str:
    """Any HTTP answer but a refusal of our credentials, a 404 or a 5xx means reachable."""
    target = settings.targets[name]
    async with http_client(settings, 1) as client:
        auth = await OutboundAuth(target.auth, client, system=name, retry=target.retry).headers()
        reply = await exchange(
            client, "HEAD", target.url, system=name, stage="check", route=route_of(target.url),
            timeout=target.retry.timeout_seconds, headers={**target.headers, **auth},
        )  # fmt: skip
    if reply.status in (401, 403):
        raise ValueError(f"HTTP {reply.status}: {name} refused our credentials")
    if reply.status == 404 or reply.status >= 500:
        raise ValueError(f"HTTP {reply.status} from {target.url}")
    return f"{target.url} answers (HTTP {reply.status} to HEAD)"


async def _ats_map(settings: Settings) -> str:
    field_map = load_field_map(settings.ats.mapping)
    return f"{settings.ats.mapping} ({len(field_map.rules)} fields, version {field_map.version})"


async def ats_health(settings: Settings) -> str:
    """The ATS's health endpoint says healthy (also part of readiness)."""
    async with http_client(settings, 1) as client:
        data = await AtsClient(settings.ats, client).health()
    services = data.get("services")
    return f"healthy ({services})" if services else "healthy"


async def _channel(settings: Settings, name: str, send: bool) -> str:
    """Apprise understands the channel's URL; with ``send``, the channel takes a message."""
    from worker.notices.channels import Channel, ChannelError

    url = settings.notifications.channels[name].url.get_secret_value()
    channel = Channel(name, url)
    state = await asyncio.to_thread(_channel_state, settings, name)
    if state is not None and state.failures:
        due = (
            f"; next try {state.next_attempt_at:%Y-%m-%d %H:%M} UTC"
            if state.next_attempt_at
            else ""
        )
        raise ValueError(
            f"{channel.service}: {state.failures} send(s) in a row failed, {state.waiting} "
            f"notice(s) wait: {state.last_error or 'no reason recorded'}{due}"
        )
    if not send:
        return f"{channel.service}: the URL is understood (--test-notice sends a message)"
    title = "hirebridge: test notice"
    body = "Sent by `hirebridge check --test-notice`: this channel gets hirebridge's notices.\n"
    try:
        await asyncio.to_thread(channel.send, title, body)
    except ChannelError as exc:
        raise ValueError(f"{channel.service}: the test message was not taken: {exc}") from None
    return f"{channel.service}: test message sent"


def _channel_state(settings: Settings, name: str) -> ChannelState | None:
    """The channel's record in the database (None before the worker first ran)."""
    engine = create_store_engine(settings.database)
    try:
        if not inspect(engine).has_table("notice_channels"):
            return None
        return next((c for c in NoticeStore(engine).channels() if c.channel == name), None)
    finally:
        engine.dispose()


async def _inbound_maps(settings: Settings) -> str:
    from worker.runtime import load_inbound_map

    inbound, loaded = settings.inbound, []
    for name, section in (("apna", inbound.apna), ("pop", inbound.pop)):
        if section.enabled and section.target is not None:
            field_map = load_inbound_map(section.target.mapping)
            loaded.append(f"{name}: {section.target.mapping.name} ({field_map.version})")
    return ", ".join(loaded)
