"""Sources' runs shared by replicas: one leader per run, taken over when the leader dies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.store.ledger_rig import rig_for
from worker.store.runs import Runs
from worker.store.tables import workers


def test_a_due_source_is_led_by_one_worker_and_handed_back_with_its_next_run(
    db_url: str,
) -> None:
    rig = rig_for(db_url)
    rig.runs.ensure(["au", "nz"])
    rig.runs.ensure(["au"])  # again: keeps the schedule
    rig.workers.beat("a")
    rig.workers.beat("b")
    a = rig.runs.take_due("a", ["au", "nz"], lease_seconds=60, limit=1)
    b = rig.runs.take_due("b", ["au", "nz"], lease_seconds=60, limit=5)
    assert len(a) == 1 and len(b) == 1 and a[0].source != b[0].source
    assert rig.runs.take_due("b", ["au", "nz"], lease_seconds=60, limit=5, now_due=True) == []
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert rig.runs.finish(a[0], "a", later)
    assert not rig.runs.finish(a[0], "b", later), "only the leader hands it back"
    assert rig.runs.take_due("b", [a[0].source], lease_seconds=60, limit=1) == [], "not due yet"
    (row,) = rig.runs.rows([a[0].source])
    assert row.lease_owner is None and row.next_run_at.replace(tzinfo=UTC) == later


def test_a_dead_leaders_run_is_taken_over_and_recorded_as_abandoned(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1"], owner="a")
    rig.workers.beat("b")
    assert rig.runs.take_due("b", ["au"], lease_seconds=60, limit=1, now_due=True) == []
    with rig.engine.begin() as conn:
        conn.execute(update(workers).where(workers.c.worker_id == "a")
                     .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)))  # fmt: skip
    (taken,) = rig.runs.take_due("b", ["au"], lease_seconds=60, limit=1, now_due=True)
    assert taken.run_id != ticket.run_id
    assert not rig.runs.renew(ticket, "a", 60), "the old leader learns it lost the run"
    assert not rig.runs.record_listing(ticket, "a", datetime.now(UTC))
    old = [run for run in Runs(rig.engine).last(5) if run["run_id"] == ticket.run_id]
    assert old[0]["outcome"] == "abandoned" and old[0]["finished_at"] is not None


def test_a_halt_is_said_once_and_progress_counts_what_is_left(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1", "2", "3"])
    (row,) = rig.runs.rows(["au"])
    assert row.listed_at is not None
    assert rig.runs.progress(ticket, row.listed_at) == (3, 0, None)
    rig.claim(limit=2)
    assert rig.runs.progress(ticket, row.listed_at) == (1, 2, None)
    assert rig.runs.halt(ticket, "pageup rate limit reached")
    assert not rig.runs.halt(ticket, "again"), "the first worker to halt it says so"
    assert rig.runs.halted(ticket) == "pageup rate limit reached"
    assert rig.runs.progress(ticket, row.listed_at)[2] == "pageup rate limit reached"
    assert rig.claim() == [], "a halted run's offers are not taken"
