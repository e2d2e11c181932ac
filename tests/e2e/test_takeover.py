"""Replicas on PostgreSQL: the one leading a source's run dies (SIGKILL) in the middle of it,
and another takes the run over within the worker timeout; every offer reaches the HRIS once
and is marked once (the one whose mark was in flight at the kill at most twice)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from tests.conftest import PG_URL, Sims
from tests.e2e.service_process import Worker
from worker.service.runner import TICK_SECONDS
from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
OFFERS = 80
REPLICAS = 3
WORKER_TIMEOUT = 4.0
LEADER = text(
    "SELECT s.run_id, w.pid FROM source_state s JOIN workers w ON w.worker_id = s.lease_owner "
    "WHERE s.source = 'pageup'"
)


def wait_until(condition: object, timeout: float, what: str) -> None:
    """Poll ``condition`` (a callable) until it holds; fail after ``timeout`` seconds."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("sims", [{"offers": OFFERS}], indirect=True)
@pytest.mark.parametrize("db_url", ["postgresql"] if PG_URL else [], indirect=True)
def test_a_replica_killed_while_leading_a_run_is_taken_over_within_the_timeout(
    sims: Sims, db_url: str, tmp_path: Path
) -> None:
    sims.pageup.faults.latency_seconds = sims.hris.faults.latency_seconds = 0.05
    data = sims.settings_data(
        db_url, sync={"concurrency": 2, "worker_timeout_seconds": WORKER_TIMEOUT}
    )
    data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600},
                       "shutdown_grace_seconds": 20}  # fmt: skip
    data["logging"] = {"format": "json", "level": "info"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    engine = create_store_engine(DatabaseSettings(url=db_url))
    armed, killed, firing = threading.Event(), threading.Event(), threading.Lock()
    victim: dict[str, object] = {}
    marked_before_posted: list[str] = []

    def on_mark(offer_id: str) -> None:
        if not sims.hris.by_external_id[offer_id]:
            marked_before_posted.append(offer_id)
        with firing:
            if not armed.is_set() or victim:
                return
            with engine.connect() as conn:
                run_id, pid = conn.execute(LEADER).one()
            os.kill(int(pid), signal.SIGKILL)  # the leader, in the middle of its run
            victim.update(run_id=run_id, pid=int(pid), at=time.monotonic(), offer=offer_id)
        killed.set()

    sims.pageup.on_mark = on_mark
    replicas = [Worker(config, dict(os.environ)) for _ in range(REPLICAS)]
    try:
        for replica in replicas:
            replica.wait_for("service_started")
        armed.set()  # every replica runs: the next mark kills the leader
        wait_until(killed.is_set, 60, "an offer marked after every replica started")
        assert sims.pageup.processed.total() < OFFERS, "the run was still going on"
        survivors = [r for r in replicas if r.process.pid != victim["pid"]]
        assert len(survivors) == REPLICAS - 1

        def taken_over() -> bool:
            with engine.connect() as conn:
                row = conn.execute(LEADER).first()
            return row is not None and row.run_id != victim["run_id"]

        # The leader stops beating at its kill: its lease is void a worker timeout after its
        # last beat, and the survivors look for due runs every tick.
        wait_until(taken_over, WORKER_TIMEOUT + TICK_SECONDS + 2.0, "the run taken over")
        took = time.monotonic() - float(str(victim["at"]))
        wait_until(lambda: sims.pageup.processed.total() == OFFERS, 60, "every offer marked")
        with engine.connect() as conn:
            (outcome,) = conn.execute(
                text("SELECT outcome FROM runs WHERE run_id = :r"), {"r": victim["run_id"]}
            ).one()
        for replica in survivors:
            replica.process.send_signal(signal.SIGTERM)
        codes = []
        for replica in survivors:
            replica.finished_events()
            codes.append(replica.process.returncode)
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.kill()
        engine.dispose()

    assert took <= WORKER_TIMEOUT + TICK_SECONDS + 2.0
    assert outcome == "abandoned", "the dead leader's run is recorded as taken over"
    assert codes == [0] * (REPLICAS - 1)
    every = {str(sample.offer_id) for sample in sims.samples}
    assert Counter(sims.hris_counts().values()) == Counter({1: OFFERS}), "each posted once"
    assert set(sims.hris_counts()) == every
    # The leader died inside its mark of one offer: PageUp took that mark, the ledger never
    # heard of it. A survivor may mark that offer again (marking a processed offer changes
    # nothing in PageUp); every other offer is marked exactly once.
    in_flight = str(victim["offer"])
    marks = dict(sims.pageup.processed)
    assert marks.pop(in_flight) in (1, 2), "the mark in flight at the kill: at most once more"
    assert marks == dict.fromkeys(every - {in_flight}, 1), "each other offer marked once"
    assert marked_before_posted == []
