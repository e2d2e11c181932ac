"""The inbound endpoints served on loopback over a real inbox (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette

from worker.inbound.server import InboxWriter, inbound_routes
from worker.service.server import server_config
from worker.settings import DatabaseSettings, InboundSettings, ServiceSettings
from worker.simulators.server import BackgroundServer
from worker.store.db import create_store_engine, migrate
from worker.store.inbox import Inbox
from worker.store.thread import StoreThread

APNA_USER, APNA_PASSWORD = "apna-user", "apna-password-for-tests"
POP_AUTH = "pop-user:pop-password-for-tests"
TARGET = {"url": "http://127.0.0.1:9/unused", "mapping": "mappings/apna_leads.yaml"}


def inbound_settings(**overrides: Any) -> InboundSettings:
    data: dict[str, Any] = {
        "public_url": "https://hirebridge.example.com",
        "max_body_bytes": 4096,
        "apna": {
            "enabled": True,
            "auth": {"type": "basic", "username": APNA_USER, "password": APNA_PASSWORD},
            "target": TARGET,
        },
        "pop": {"enabled": True, "auth": POP_AUTH, "target": TARGET},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return InboundSettings(**data)


@dataclass
class Rig:
    url: str
    inbox: Inbox
    stored: list[int]


@pytest.fixture
def make_rig(db_url: str) -> Iterator[Any]:
    servers: list[BackgroundServer] = []
    engine = create_store_engine(DatabaseSettings(url=db_url))
    migrate(engine)
    inbox = Inbox(engine)

    def start(
        settings: InboundSettings | None = None,
        store: Any = None,
        service: ServiceSettings | None = None,
    ) -> Rig:
        """``service``: serve as ``hirebridge run`` does, with these limits."""
        stored: list[int] = []
        writer = InboxWriter(inbox, StoreThread(engine), stored=lambda: stored.append(1))
        app = Starlette(routes=inbound_routes(settings or inbound_settings(), store or writer.add))
        config = server_config(app, service) if service is not None else None
        server = BackgroundServer(app, config=config).start()
        servers.append(server)
        return Rig(server.url, inbox, stored)

    yield start
    for server in servers:
        server.stop()
    engine.dispose()


@pytest.fixture
def rig(make_rig: Any) -> Rig:
    rig: Rig = make_rig()
    return rig
