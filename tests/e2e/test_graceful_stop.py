"""SIGTERM and SIGINT at seeded random points of a real ``hirebridge run``.

Each trial starts the service against simulators that answer in 50 ms, and sends the signal from
inside a simulator at a random step of the first run: while PageUp serves the k-th offer, right
after the HRIS stored the k-th employee (before the worker hears back), or while PageUp marks the
k-th offer. That simulator then holds its answers until the worker logs the stop, so that the
signal lands mid-step instead of racing them. The offers in flight must finish (posted and
marked), nothing else may start, the process must exit 0 with no error logged, and a later
`sync --once` must finish the rest with no hire duplicated or lost.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import REPO, FakeIngest, Sims
from tests.e2e.service_process import Worker, apna_service
from worker.settings import DatabaseSettings
from worker.simulators.server import BackgroundServer
from worker.store.db import create_store_engine
from worker.store.ledger import Ledger
from worker.store.sources import SourceRuns
from worker.store.workers import Workers

pytestmark = pytest.mark.e2e
OFFERS = 10
LANES = 4
SEED = 20261125
# Ten SIGTERMs (the first two in each place, then random places), and one SIGINT.
PLACES = ["record", "mark", "fetch", "record", "mark", "fetch"]


@pytest.fixture
def process_ingest() -> Iterator[tuple[FakeIngest, str]]:
    """The fake Sentry ingest, for the service processes only. (The shared ``ingest`` fixture
    re-initialises this process's Sentry client on teardown with the SDK's default
    integrations, which patch Starlette for every later test in the session.)"""
    fake = FakeIngest()
    with BackgroundServer(fake.app()) as server:
        yield fake, f"{server.url.replace('http://', 'http://public@')}/42"


def trials() -> list[tuple[str, int, signal.Signals]]:
    rng = random.Random(SEED)
    places = PLACES + [rng.choice(["record", "mark", "fetch"]) for _ in range(4)]
    chosen = [(place, rng.randint(1, OFFERS - LANES), signal.SIGTERM) for place in places]
    last = (rng.choice(["record", "mark"]), rng.randint(1, OFFERS - LANES), signal.SIGINT)
    return [*chosen, last]


@pytest.mark.parametrize(("place", "at", "signum"), trials())
def test_a_signal_mid_run_lets_the_offers_in_flight_finish(
    place: str, at: int, signum: signal.Signals, tmp_path: Path
) -> None:
    sims = Sims(OFFERS, frozenset()).start()
    try:
        sims.pageup.faults.latency_seconds = 0.05
        sims.hris.faults.latency_seconds = 0.05
        database = f"sqlite:///{tmp_path / 'state.sqlite'}"
        data = sims.settings_data(database, sync={"concurrency": LANES})
        data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600},
                           "shutdown_grace_seconds": 20}  # fmt: skip
        data["logging"] = {"format": "json"}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))

        seen = Counter[str]()
        signalled: list[int] = []
        worker: list[Worker] = []

        def step(kind: str, _offer_id: str) -> None:
            seen[kind] += 1
            if kind == place and seen[kind] == at and worker and not signalled:
                # Still running when signalled: the stop truly lands mid-run.
                assert worker[0].process.poll() is None
                os.kill(worker[0].process.pid, signum)
                signalled.append(seen["mark"])
                # This simulator answers nothing more until the worker says it is stopping:
                # the signal lands mid-step, rather than racing the answer (a lane that heard
                # back first would rightly start its next offer before the stop arrived).
                worker[0].wait_for("shutdown_requested", timeout=20)

        sims.hris.on_record = lambda offer_id: step("record", offer_id)
        sims.pageup.on_mark = lambda offer_id: step("mark", offer_id)
        sims.pageup.on_fetch = lambda offer_id: step("fetch", offer_id)
        worker.append(Worker(config, dict(os.environ)))
        events = worker[0].finished_events()
        assert worker[0].process.returncode == 0
        assert signalled, "the signal was never sent"

        names = [event.get("event") for event in events]
        assert "shutdown_requested" in names and names[-1] == "service_stopped"
        errors = [event for event in events if event.get("level") in ("error", "critical")]
        assert errors == [], "a clean stop logs no error"
        marked = {k for k, v in sims.pageup.processed.items() if v}
        assert set(sims.hris_counts()) == marked, "every offer in the HRIS is also marked"
        # The k-th offer and the (at most LANES - 1) others in flight finish; no new one starts.
        assert at <= len(marked) <= at + LANES - 1
        engine = create_store_engine(DatabaseSettings(url=database))
        counts = Ledger(engine).counts()
        engine.dispose()
        assert counts.get("posting", 0) == 0 and counts.get("posted", 0) == 0, counts

        # The rest resumes: every hire arrives once, and is marked once.
        rest = subprocess.run(
            [sys.executable, "-m", "worker", "--config", str(config), "sync", "--once"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert rest.returncode == 0, rest.stdout + rest.stderr
        every = {str(sample.offer_id) for sample in sims.samples}
        assert sims.hris_counts() == dict.fromkeys(every, 1)
        assert dict(sims.pageup.processed) == dict.fromkeys(every, 1)
    finally:
        sims.stop()
        if worker and worker[0].process.poll() is None:
            worker[0].process.kill()


def test_past_the_grace_the_stop_cancels_and_names_what_it_left(
    tmp_path: Path, process_ingest: tuple[FakeIngest, str]
) -> None:
    """An HRIS that hangs: the stop gives up after the grace, says which offers it left in
    which state, frees their claims, and the next start finishes them exactly once."""
    fake, dsn = process_ingest
    sims = Sims(6, frozenset()).start()
    try:
        sims.hris.faults.latency_seconds = 3.0  # every post hangs well past the grace
        database = f"sqlite:///{tmp_path / 'state.sqlite'}"
        data = sims.settings_data(database, sync={"concurrency": 2})
        data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600},
                           "shutdown_grace_seconds": 0.5}  # fmt: skip
        data["logging"] = {"format": "json"}
        data["sentry"] = {"dsn": dsn}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        worker: list[Worker] = []
        fetched: list[str] = []

        def on_fetch(offer_id: str) -> None:
            fetched.append(offer_id)
            if len(fetched) == 2:  # both lanes have an offer: soon both hang in the post
                os.kill(worker[0].process.pid, signal.SIGTERM)

        sims.pageup.on_fetch = on_fetch
        worker.append(Worker(config, dict(os.environ)))
        events = worker[0].finished_events()
        assert worker[0].process.returncode == 0
        gave_up = [e for e in events if e.get("event") == "shutdown_grace_exceeded"]
        assert len(gave_up) == 1
        left = sorted(gave_up[0]["offers_unfinished"])
        assert left == sorted(
            f"pageup/{offer_id}: pending at post (hris posting)" for offer_id in fetched
        )
        # On-call hears of it once, as a warning grouped under its own fingerprint.
        (event,) = fake.of("event")
        assert event["level"] == "warning"
        assert event["fingerprint"] == ["shutdown-incomplete"]
        assert event["contexts"]["unfinished"]["offer_count"] == len(fetched)

        engine = create_store_engine(DatabaseSettings(url=database))
        ledger = Ledger(engine)
        states = [ledger.get("pageup", offer_id) for offer_id in fetched]
        engine.dispose()
        assert all(s is not None and s.lease_owner is None for s in states), "claims freed"
        assert sims.pageup.processed.total() == 0

        sims.hris.faults.latency_seconds = 0.0
        rest = subprocess.run(
            [sys.executable, "-m", "worker", "--config", str(config), "sync", "--once"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert rest.returncode == 0, rest.stdout + rest.stderr
        every = {str(sample.offer_id) for sample in sims.samples}
        assert sims.hris_counts() == dict.fromkeys(every, 1)
        assert dict(sims.pageup.processed) == dict.fromkeys(every, 1)
    finally:
        sims.stop()
        if worker and worker[0].process.poll() is None:
            worker[0].process.kill()


def test_an_idle_service_stops_cleanly_with_no_error_and_no_sentry_event(
    tmp_path: Path, process_ingest: tuple[FakeIngest, str]
) -> None:
    """SIGTERM between runs, while the scheduler's own jobs (taking due runs every second,
    the heartbeat, housekeeping) come and go: none is cancelled mid-call, nothing is left
    leased, and neither the log nor Sentry hears of an error."""
    fake, dsn = process_ingest
    sims = Sims(3, frozenset()).start()
    worker: Worker | None = None
    try:
        database = f"sqlite:///{tmp_path / 'state.sqlite'}"
        # The shortest worker timeout: a heartbeat every half second.
        data = sims.settings_data(database, sync={"worker_timeout_seconds": 3})
        data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600},
                           "shutdown_grace_seconds": 20}  # fmt: skip
        data["logging"] = {"format": "json"}
        data["sentry"] = {"dsn": dsn}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        worker = Worker(config, dict(os.environ))
        worker.wait_for("run_finished", outcome="ok")  # idle from now on, for an hour
        os.kill(worker.process.pid, signal.SIGTERM)
        events = worker.finished_events()

        assert worker.process.returncode == 0
        names = [event.get("event") for event in events]
        assert names[-1] == "service_stopped"
        errors = [event for event in events if event.get("level") in ("error", "critical")]
        assert errors == [], "a clean stop logs no error"
        assert not [event for event in events if "raised an exception" in json.dumps(event)]
        assert fake.of("event") == [], "a clean stop sends Sentry nothing"
        engine = create_store_engine(DatabaseSettings(url=database))
        rows = SourceRuns(engine, worker_timeout=3).rows()
        registered = Workers(engine).all()
        engine.dispose()
        assert [row.lease_owner for row in rows] == [None], "no run left leased"
        assert registered == [], "the worker signed off"
        assert len(sims.hris_counts()) == 3
    finally:
        sims.stop()
        if worker is not None and worker.process.poll() is None:
            worker.process.kill()


def _stop_while_held(worker: list[Worker], release: threading.Event) -> None:
    """From inside a simulator's handler: SIGTERM the service, then hold the request until the
    service has begun its stop (the test thread sees shutdown_requested)."""
    os.kill(worker[0].process.pid, signal.SIGTERM)
    assert release.wait(30), "the service never said it was stopping"


def _clean_stop(worker: Worker, release: threading.Event) -> list[dict[str, Any]]:
    worker.wait_for("shutdown_requested")
    release.set()
    events = worker.finished_events()
    assert worker.process.returncode == 0
    assert [e.get("event") for e in events][-1] == "service_stopped"
    errors = [event for event in events if event.get("level") in ("error", "critical")]
    assert errors == [], "a clean stop logs no error"
    assert "shutdown_grace_exceeded" not in [event.get("event") for event in events]
    return events


def test_a_stop_while_the_ats_holds_a_job_request_lets_the_job_finish(tmp_path: Path) -> None:
    from worker.simulators import ats
    from worker.store.jobs import JobLedger

    state = ats.AtsState()
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "jobs.json").write_text(json.dumps([
        {"id": "P1", "title": "Engineer", "apply_url": "https://careers.example.com/1"},
        {"id": "P2", "title": "Nurse", "apply_url": "https://careers.example.com/2"},
    ]))  # fmt: skip
    release, worker = threading.Event(), list[Worker]()
    state.on_call = lambda _action: None if release.is_set() else _stop_while_held(worker, release)
    sims = Sims(0, frozenset()).start()
    try:
        with BackgroundServer(ats.build_app(state)) as server:
            database = f"sqlite:///{tmp_path / 'state.sqlite'}"
            data = sims.settings_data(database)
            data["ats"] = {"enabled": True, "base_url": f"{server.url}{ats.BASE}",
                           "api_key": "ats-sim-key", "source_name": "Main_ERP",
                           "mapping": str(REPO / "mappings" / "ats_jobs.yaml"),
                           "source": {"type": "directory", "directory": str(folder)}}  # fmt: skip
            data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600},
                               "shutdown_grace_seconds": 20}  # fmt: skip
            data["logging"] = {"format": "json"}
            config = tmp_path / "config.yaml"
            config.write_text(yaml.safe_dump(data))
            worker.append(Worker(config, dict(os.environ)))
            _clean_stop(worker[0], release)
    finally:
        sims.stop()
        if worker and worker[0].process.poll() is None:
            worker[0].process.kill()

    assert state.calls["create_job"] == 1, "the held job finished; no other began"
    assert [job["title"] for job in state.jobs.values()] == ["Engineer"]
    engine = create_store_engine(DatabaseSettings(url=database))
    jobs = JobLedger(engine, "Main_ERP").all()
    engine.dispose()
    held = [job for job in jobs.values() if job.ats_job_id is not None]
    assert [(job.status, job.ats_job_id) for job in held] == [("open", next(iter(state.jobs)))]
    assert all(job.status != "creating" for job in jobs.values()), "nothing left half-done"


def test_a_stop_while_a_push_is_delivered_lets_the_delivery_finish(tmp_path: Path) -> None:
    from sqlalchemy import select

    from worker.simulators.apna import make_leads
    from worker.store.inbox import Inbox
    from worker.store.tables import inbox

    sims = Sims(0, frozenset()).start()
    release, worker = threading.Event(), list[Worker]()
    sims.hris.on_collect = lambda _collection, _payload: _stop_while_held(worker, release)
    try:
        database = f"sqlite:///{tmp_path / 'state.sqlite'}"
        data = apna_service(sims, database, shutdown_grace_seconds=20)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        worker.append(Worker(config, dict(os.environ)))
        port = worker[0].wait_for("service_started")["port"]
        (lead,) = make_leads(1, seed=5)
        stored = httpx.post(f"http://127.0.0.1:{port}/inbound/apna", json=lead,
                            headers={"Authorization": "Bearer t0k"}, timeout=30)  # fmt: skip
        assert stored.status_code == 200, stored.text
        _clean_stop(worker[0], release)
    finally:
        sims.stop()
        if worker and worker[0].process.poll() is None:
            worker[0].process.kill()

    assert len(sims.hris.collected["leads"]) == 1, "delivered once"
    engine = create_store_engine(DatabaseSettings(url=database))
    items = [(item.status, item.target_id) for item in Inbox(engine).items()]
    with engine.connect() as conn:
        leases = conn.execute(select(inbox.c.lease_owner)).scalars().all()
    engine.dispose()
    assert items == [("delivered", "LEAD-000001")], "recorded once, with the target's id"
    assert leases == [None], "nothing left claimed"


def test_a_signal_mid_run_of_sync_once_lets_the_offers_in_flight_finish(tmp_path: Path) -> None:
    sims = Sims(OFFERS, frozenset()).start()
    sync: list[subprocess.Popen[str]] = []
    try:
        sims.pageup.faults.latency_seconds = 0.05
        sims.hris.faults.latency_seconds = 0.05
        database = f"sqlite:///{tmp_path / 'state.sqlite'}"
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(sims.settings_data(database, sync={"concurrency": LANES})))
        recorded: list[str] = []

        def on_record(offer_id: str) -> None:
            recorded.append(offer_id)
            if len(recorded) == 2:  # the second employee stored: the others are in flight
                assert sync[0].poll() is None
                os.kill(sync[0].pid, signal.SIGTERM)

        sims.hris.on_record = on_record
        command = [sys.executable, "-m", "worker", "--config", str(config), "sync", "--once"]
        sync.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True))  # fmt: skip
        out, err = sync[0].communicate(timeout=120)
        assert sync[0].returncode == 0, out + err
        assert "stopped" in out, out
        assert "Traceback" not in err, err

        marked = {k for k, v in sims.pageup.processed.items() if v}
        assert set(sims.hris_counts()) == marked, "every offer in the HRIS is also marked"
        assert 2 <= len(marked) <= 2 + LANES - 1, "those in flight finished; none began after"
        engine = create_store_engine(DatabaseSettings(url=database))
        counts = Ledger(engine).counts()
        leased = SourceRuns(engine, worker_timeout=30).rows()
        engine.dispose()
        assert counts.get("posting", 0) == 0 and counts.get("posted", 0) == 0, counts
        assert [row.lease_owner for row in leased] == [None], "the run handed back"

        rest = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert rest.returncode == 0, rest.stdout + rest.stderr
        every = {str(sample.offer_id) for sample in sims.samples}
        assert sims.hris_counts() == dict.fromkeys(every, 1)
        assert dict(sims.pageup.processed) == dict.fromkeys(every, 1)
    finally:
        sims.stop()
        if sync and sync[0].poll() is None:
            sync[0].kill()
