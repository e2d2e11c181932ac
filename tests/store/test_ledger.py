"""The ledger on SQLite and PostgreSQL: migrations, transitions, failures after the post."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine, migrate
from worker.store.ledger import Failure, Ledger, OfferState, Status
from worker.store.tables import metadata

NOW = datetime.now(UTC)


def claim(
    ledger: Ledger, offer_id: str, owner: str = "w1", lease: float = 600
) -> OfferState | None:
    return ledger.claim(offer_id, run_id="r", owner=owner, lease_seconds=lease, snapshot_at=NOW)


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


def test_concurrent_migrations_of_a_fresh_database_all_succeed(db_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    engines = [create_store_engine(DatabaseSettings(url=db_url)) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(migrate, engines))  # raises if any migration failed
    with engines[0].connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_an_offer_moves_through_its_states(db_url: str) -> None:
    ledger = ledger_for(db_url)
    first = claim(ledger, "1")
    assert first is not None
    assert (first.status, first.attempts) == (Status.PENDING, 1)
    ledger.record_posting("1", payload_hash="h", mapping_version="v", idempotency_key="k")
    assert ledger.get("1").status == Status.POSTING  # type: ignore[union-attr]
    ledger.record_posted("1", hris_id="EMP-1")
    ledger.record_processed("1")
    done = ledger.get("1")
    assert done is not None and done.status == Status.PROCESSED and done.hris_id == "EMP-1"
    assert claim(ledger, "1") is None, "processed before the snapshot? no: after, so not due"


def test_a_failure_after_the_post_keeps_the_offer_posted(db_url: str) -> None:
    ledger = ledger_for(db_url)
    claim(ledger, "1")
    ledger.record_posted("1", hris_id="EMP-1")
    ledger.record_failure("1", Failure("mark_processed", "retriable", "HTTP 503", 503))
    state = ledger.get("1")
    assert state is not None and state.status == Status.POSTED
    assert (state.stage, state.last_error, state.http_status) == ("mark_processed", "HTTP 503", 503)
    claim(ledger, "2")
    ledger.record_failure("2", Failure("map", "mapping", "field 'x': required", None, park=True))
    assert ledger.get("2").status == Status.FAILED  # type: ignore[union-attr]
    assert ledger.counts() == {"posted": 1, "failed": 1}
    assert [o.offer_id for o in ledger.unfinished()] == ["1", "2"]


def test_runs_are_recorded(db_url: str) -> None:
    ledger = ledger_for(db_url)
    ledger.start_run("r1")
    ledger.finish_run("r1", outcome="ok", listed=3, succeeded=3, failed=0, error=None)
    (run,) = ledger.last_runs()
    assert run["outcome"] == "ok" and run["listed"] == 3 and run["finished_at"] is not None


def test_a_claim_excludes_other_workers_until_it_expires_or_ends(db_url: str) -> None:
    ledger = ledger_for(db_url)
    assert claim(ledger, "1", owner="a") is not None
    assert claim(ledger, "1", owner="b") is None
    assert claim(ledger, "1", owner="a") is not None, "the holder may claim again"
    ledger.record_failure("1", Failure("post", "retriable", "HTTP 503", 503))
    assert claim(ledger, "1", owner="b") is not None, "a recorded failure frees the claim"
    assert claim(ledger, "2", owner="a", lease=-1) is not None
    assert claim(ledger, "2", owner="b") is not None, "an expired claim is free"


def test_an_offer_processed_before_the_listing_is_claimed_again(db_url: str) -> None:
    ledger = ledger_for(db_url)
    claim(ledger, "1")
    ledger.record_processed("1")
    later = datetime.now(UTC) + timedelta(seconds=1)
    again = ledger.claim("1", run_id="r2", owner="w", lease_seconds=60, snapshot_at=later)
    assert again is not None and again.status == Status.PROCESSED
