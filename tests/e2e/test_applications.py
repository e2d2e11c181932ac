"""``hirebridge run`` with the applications flow on: scheduled runs, metrics, and a SIGTERM in
the middle of a run (what is in flight finishes and is recorded; the rest is sent later, once)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO, Sims
from tests.e2e.service_process import Worker
from worker.cli import main
from worker.settings import DatabaseSettings
from worker.store.applications import ApplicationLedger
from worker.store.db import create_store_engine

pytestmark = pytest.mark.e2e
JOB, COUNT = 3001, 25


def config_for(sims: Sims, tmp_path: Path, interval: float) -> Path:
    sims.pageup.applications.add_job(JOB, COUNT)
    sims.hris.required = ("externalId",)
    data = sims.settings_data(f"sqlite:///{tmp_path / 'state.sqlite'}")
    data["pageup"]["paging"] = {"mode": "page_number", "page_size": 10}
    data["pageup"]["applications"] = {
        "enabled": True, "job_ids": [str(JOB)], "targets": ["hris"], "concurrency": 2,
        "schedule": {"interval_seconds": interval},
    }  # fmt: skip
    data["hris"]["applications_mapping"] = str(REPO / "mappings" / "example_applications.yaml")
    data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600}}
    data["logging"] = {"format": "json"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def test_run_schedules_the_applications_flow_and_counts_it(sims: Sims, tmp_path: Path) -> None:
    worker = Worker(config_for(sims, tmp_path, interval=1), dict(os.environ))
    try:
        port = worker.wait_for("service_started")["port"]
        first = worker.wait_for("application_run_finished")
        assert (first["created"], first["failed"], first["halted"]) == (COUNT, 0, None)
        again = worker.wait_for("application_run_finished")  # the next scheduled run
        assert (again["unchanged"], again["created"], again["updated"]) == (COUNT, 0, 0)
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        created = 'hirebridge_applications_total{outcome="created",source="pageup",target="hris"}'
        assert f"{created} 25.0" in exposition
        assert 'hirebridge_application_runs_total{outcome="ok",source="pageup"}' in exposition
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
    assert set(sims.hris.external_ids().values()) == {1}


def test_sigterm_mid_run_finishes_what_is_in_flight_and_sends_the_rest_later_once(
    sims: Sims, tmp_path: Path
) -> None:
    sims.pageup.faults.latency_seconds = 0.1  # a run of 25 applications takes a few seconds
    config = config_for(sims, tmp_path, interval=3600)
    worker = Worker(config, dict(os.environ))
    try:
        worker.wait_for("application_delivered")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
    events = worker.finished_events()
    (finished,) = [e for e in events if e.get("event") == "application_run_finished"]
    assert 0 < finished["created"] < COUNT
    engine = create_store_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'state.sqlite'}"))
    try:
        states = ApplicationLedger(engine).states("pageup", str(JOB)).values()
    finally:
        engine.dispose()
    assert {state.status for state in states} == {"delivered"}  # none left "sending"
    assert len(states) == finished["created"]

    sims.pageup.faults.latency_seconds = 0.0
    assert main(["--config", str(config), "applications", "sync", "--once"]) == 0
    ids = sims.hris.external_ids()
    assert len(ids) == COUNT and set(ids.values()) == {1}
