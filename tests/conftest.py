"""Shared fixtures: simulators on loopback, state stores (SQLite always, PostgreSQL when
``HIREBRIDGE_TEST_DATABASE_URL`` is set, as ``.ci/run`` always does), captured logs."""

from __future__ import annotations

import gzip
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.demo import TARGETS, simulator_settings
from worker.observability import configure_logging
from worker.settings import DatabaseSettings, Settings
from worker.simulators import hris, pageup, storage
from worker.simulators.sample import make_offers
from worker.simulators.server import BackgroundServer
from worker.store.db import create_store_engine, migrate, normalise_url
from worker.store.inbox import Inbox

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("HIREBRIDGE_TEST_DATABASE_URL")
DB_KINDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def pytest_report_header() -> str:
    return f"state stores under test: {', '.join(DB_KINDS)}"


@pytest.fixture(params=DB_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind under test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    assert PG_URL is not None
    name = f"hb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = normalise_url(PG_URL).rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Sims:
    """Both simulators, started on loopback for one test."""

    def __init__(self, offers: int, missing_tfn: frozenset[int], target: str = "example") -> None:
        self.samples = make_offers(offers, missing_tfn=missing_tfn)
        self.pageup = pageup.PageUpState()
        self.pageup.load(self.samples)
        self.target = target
        self.hris = hris.HrisState(flavour=TARGETS[target].flavour)
        self._servers = [
            BackgroundServer(pageup.build_app(self.pageup)),
            BackgroundServer(hris.build_app(self.hris)),
            BackgroundServer(storage.build_app(self.pageup.storage)),
        ]

    def start(self) -> Sims:
        for server in self._servers:
            server.start()
        self.pageup_url, self.hris_url, self.storage_url = (s.url for s in self._servers)
        self.pageup.storage.url = self.storage_url
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()

    def settings_data(self, db_url: str, **overrides: Any) -> dict[str, Any]:
        mapping = REPO / "mappings" / TARGETS[self.target].mapping
        data = simulator_settings(
            self.pageup_url, self.hris_url, db_url, mapping=mapping, target=self.target
        )
        for section in ("pageup", "hris"):
            data[section]["retry"] = {
                "attempts": 3, "backoff_initial_seconds": 0.0, "backoff_max_seconds": 0.01,
                "timeout_seconds": 2.0,
            }  # fmt: skip
        for section, values in overrides.items():
            data.setdefault(section, {}).update(values)
        return data

    def settings(self, db_url: str, **overrides: Any) -> Settings:
        return Settings(**self.settings_data(db_url, **overrides))

    def hris_counts(self) -> dict[str, int]:
        return dict(self.hris.external_ids())


@pytest.fixture
def sims(request: pytest.FixtureRequest) -> Iterator[Sims]:
    """Simulators with 12 sample offers (override with ``@pytest.mark.parametrize`` indirect)."""
    options = getattr(request, "param", {})
    started = Sims(
        options.get("offers", 12),
        options.get("missing_tfn", frozenset()),
        options.get("target", "example"),
    ).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line (JSON) written while the test runs."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    yield stream
    configure_logging("warning", "json")


class RoutedSims:
    """The routing example (examples/routes.yaml) on simulators: two PageUp tenants on one port
    (au: Australian hires; group: Australian and New Zealand hires) and one HRIS simulator per
    target (payroll_au, payroll_nz, hris)."""

    def __init__(self) -> None:
        from worker.demo_routes import TARGETS, tenants

        self.tenants, self.samples = tenants()
        self.targets = {name: hris.HrisState() for name in TARGETS}
        self._servers = {"pageup": BackgroundServer(pageup.build_app(list(self.tenants.values())))}
        self._servers |= {name: BackgroundServer(hris.build_app(state))
                          for name, state in self.targets.items()}  # fmt: skip

    def start(self) -> RoutedSims:
        for server in self._servers.values():
            server.start()
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()

    def settings_data(self, db_url: str, **overrides: Any) -> dict[str, Any]:
        from worker.demo_routes import routes_settings

        urls = {name: self._servers[name].url for name in self.targets}
        data = routes_settings(self._servers["pageup"].url, urls, db_url, self.targets["hris"])
        retry = {"attempts": 3, "backoff_initial_seconds": 0.0, "backoff_max_seconds": 0.01,
                 "timeout_seconds": 2.0}  # fmt: skip
        for section in (*data["sources"].values(), *data["targets"].values()):
            section["retry"] = retry
        for section, values in overrides.items():
            data.setdefault(section, {}).update(values)
        return data

    def settings(self, db_url: str, **overrides: Any) -> Settings:
        return Settings(**self.settings_data(db_url, **overrides))

    def country(self, tenant: str, offer_id: str) -> str:
        sample = next(s for s in self.samples[tenant] if str(s.offer_id) == offer_id)
        return str(sample.offer["Location"]["Country"])


@pytest.fixture
def routed() -> Iterator[RoutedSims]:
    started = RoutedSims().start()
    try:
        yield started
    finally:
        started.stop()


class FakeIngest:
    """A Sentry ingest on loopback that records every envelope."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.raw: list[bytes] = []

    def app(self) -> Starlette:
        async def envelope(request: Request) -> Response:
            body = await request.body()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            self.raw.append(body)
            lines = body.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if header.strip():
                    self.items.append((json.loads(header)["type"], json.loads(payload)))
            return JSONResponse({})

        return Starlette(routes=[Route("/api/{project}/envelope/", envelope, methods=["POST"])])

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [payload for item, payload in self.items if item == kind]


@pytest.fixture
def ingest() -> Iterator[tuple[FakeIngest, str]]:
    fake = FakeIngest()
    with BackgroundServer(fake.app()) as server:
        yield fake, f"{server.url.replace('http://', 'http://public@')}/42"
        sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: later tests send nothing


@pytest.fixture
def inbox(db_url: str) -> Iterator[Inbox]:
    """A fresh inbox on each kind of database under test."""
    engine = create_store_engine(DatabaseSettings(url=db_url))
    migrate(engine)
    yield Inbox(engine)
    engine.dispose()
