"""Shared fixtures: simulators on loopback, state stores (SQLite always, PostgreSQL when
``HIREBRIDGE_TEST_DATABASE_URL`` is set, as ``.ci/run`` always does), captured logs."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from worker.demo import TARGETS, simulator_settings
from worker.observability import configure_logging
from worker.settings import Settings
from worker.simulators import hris, pageup, storage
from worker.simulators.sample import make_offers
from worker.simulators.server import BackgroundServer
from worker.store.db import normalise_url

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
