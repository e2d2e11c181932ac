"""The ledger on SQLite and PostgreSQL: migrations, transitions, failures after the post."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine, migrate
from worker.store.ledger import Failure, Ledger, Status
from worker.store.tables import metadata


def ledger_for(url: str) -> Ledger:
    engine = create_store_engine(DatabaseSettings(url=url))
    migrate(engine)
    migrate(engine)  # idempotent
    return Ledger(engine, "218")


def test_migrations_match_the_table_definitions(db_url: str) -> None:
    engine = create_store_engine(DatabaseSettings(url=db_url))
    migrate(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_an_offer_moves_through_its_states(db_url: str) -> None:
    ledger = ledger_for(db_url)
    first = ledger.begin("1", "run-a")
    assert (first.status, first.attempts) == (Status.PENDING, 1)
    ledger.record_posting("1", payload_hash="h", mapping_version="v", idempotency_key="k")
    assert ledger.get("1").status == Status.POSTING  # type: ignore[union-attr]
    ledger.record_posted("1", hris_id="EMP-1")
    ledger.record_processed("1")
    done = ledger.get("1")
    assert done is not None and done.status == Status.PROCESSED and done.hris_id == "EMP-1"
    assert ledger.begin("1", "run-b").attempts == 2


def test_a_failure_after_the_post_keeps_the_offer_posted(db_url: str) -> None:
    ledger = ledger_for(db_url)
    ledger.begin("1", "r")
    ledger.record_posted("1", hris_id="EMP-1")
    ledger.record_failure("1", Failure("mark_processed", "retriable", "HTTP 503", 503))
    state = ledger.get("1")
    assert state is not None and state.status == Status.POSTED
    assert (state.stage, state.last_error, state.http_status) == ("mark_processed", "HTTP 503", 503)
    ledger.begin("2", "r")
    ledger.record_failure("2", Failure("map", "mapping", "field 'x': required", None))
    assert ledger.get("2").status == Status.FAILED  # type: ignore[union-attr]
    assert ledger.counts() == {"posted": 1, "failed": 1}
    assert [o.offer_id for o in ledger.unfinished()] == ["1", "2"]


def test_runs_are_recorded(db_url: str) -> None:
    ledger = ledger_for(db_url)
    ledger.start_run("r1")
    ledger.finish_run("r1", outcome="ok", listed=3, succeeded=3, failed=0, error=None)
    (run,) = ledger.last_runs()
    assert run["outcome"] == "ok" and run["listed"] == 3 and run["finished_at"] is not None
