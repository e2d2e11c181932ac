"""The ledger on SQLite and PostgreSQL: migrations, claims, per-target states, fencing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, update

from tests.store.ledger_rig import rig_for
from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine, migrate
from worker.store.due import due_offers
from worker.store.ledger import Failure, LeaseLost, Sending, Status
from worker.store.tables import metadata, workers

LATER = datetime.now(UTC) + timedelta(hours=1)


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


def test_an_offer_moves_through_its_states_per_target(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("au", ["1"])
    (offer,) = rig.claim()
    assert (offer.status, offer.attempts, offer.routed_at) == (Status.PENDING, 1, None)
    sending = [Sending(t, f"key-{t}", "h", "v") for t in ("hris", "payroll")]
    rig.ledger.begin_delivery("au", "1", owner="w1", route=["hris", "payroll"], sending=sending)
    assert rig.ledger.counts() == {"posting": 1}
    rig.ledger.record_posted("au", "1", "hris", owner="w1", record_id="EMP-1")
    assert rig.ledger.counts() == {"posting": 1}, "payroll has not answered yet"
    rig.ledger.record_posted("au", "1", "payroll", owner="w1", record_id="P-9")
    assert rig.ledger.counts() == {"posted": 1}, "only the mark is left"
    rig.ledger.record_processed("au", "1", owner="w1")
    done = rig.ledger.get("au", "1")
    assert done is not None and done.status == Status.PROCESSED and done.lease_owner is None
    assert {t.target: t.record_id for t in done.targets} == {"hris": "EMP-1", "payroll": "P-9"}
    assert {t.idempotency_key for t in done.targets} == {"key-hris", "key-payroll"}
    assert rig.claim() == [], "tried in this run"


def test_a_processed_offer_that_comes_back_in_a_later_listing_is_due_again(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1"])
    rig.claim()
    rig.ledger.record_processed("au", "1", owner="w1")
    rig.runs.finish(ticket, "w1", datetime.now(UTC))
    rig.start("au", ["1"])  # still in PageUp's queue: the mark did not take
    (again,) = rig.claim()
    assert again.status == Status.PROCESSED, "the pipeline will only mark it"


def test_failures_keep_posted_targets_posted_and_park_what_waits_for_an_admin(
    db_url: str,
) -> None:
    rig = rig_for(db_url)
    rig.start("au", ["1", "2"])
    rig.claim()
    sending = [Sending(t, f"k-{t}", "h", "v") for t in ("hris", "payroll")]
    rig.ledger.begin_delivery("au", "1", owner="w1", route=["hris", "payroll"], sending=sending)
    rig.ledger.record_posted("au", "1", "hris", owner="w1", record_id="EMP-1")
    refused = Failure("post", "permanent", "HTTP 422: cost centre", 422, park=True)
    rig.ledger.record_failed("au", "1", owner="w1", offer=refused, targets={"payroll": refused})
    one = rig.ledger.get("au", "1")
    assert one is not None and one.status == Status.FAILED and one.parked_at is not None
    hris, payroll = one.targets
    assert hris.status == Status.POSTED and hris.parked_at is None
    assert payroll.status == Status.FAILED and payroll.parked_at is not None
    mark = Failure("mark_processed", "retriable", "HTTP 503", 503, next_attempt_at=LATER)
    rig.ledger.record_failed("au", "2", owner="w1", offer=mark, all_posted=True)
    two = rig.ledger.get("au", "2")
    assert two is not None and two.status == Status.POSTED and two.next_attempt_at is not None
    assert [o.offer_id for o in rig.ledger.unfinished(parked_only=True)] == ["1"]
    assert rig.ledger.target_counts() == {("hris", "posted"): 1, ("payroll", "parked"): 1}


def test_a_claim_excludes_other_workers_until_it_expires_or_its_worker_dies(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1", "2"])
    assert len(rig.claim("a", limit=1)) == 1
    (other,) = rig.claim("b")
    assert other.offer_id == "2", "b gets only what a did not take"
    rig.runs.finish(ticket, "w1", datetime.now(UTC))
    rig.start("au", ["1", "2"], owner="b")  # a new run: neither has been tried in it
    # 1 is a's (alive); 2 is b's own claim, which may still be in flight in b: never twice.
    assert rig.claim("b") == []
    with rig.engine.begin() as conn:  # a stops beating: its claims are void at once
        conn.execute(update(workers).where(workers.c.worker_id == "a")
                     .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)))  # fmt: skip
    assert [o.offer_id for o in rig.claim("b")] == ["1"]
    with pytest.raises(LeaseLost):  # a comes back to life: it may write nothing more
        rig.ledger.record_processed("au", "1", owner="a")


def test_an_offer_whose_claimer_died_mid_run_is_taken_again_in_that_run(db_url: str) -> None:
    """Each offer is tried once per run, but an attempt whose worker died was not a try: the
    run (led by a live worker) takes it again at once, not a period later (issue #12)."""
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1", "2", "3", "4"], owner="leader")
    (row,) = rig.runs.rows(["au"])
    assert row.listed_at is not None
    assert len(rig.claim("a", limit=3)) == 3
    rig.ledger.record_processed("au", "1", owner="a")
    # a posts 3 to its only target: only the mark is left, which a may be sending as it dies
    rig.ledger.begin_delivery("au", "3", owner="a", route=["hris"],
                              sending=[Sending("hris", "k-3", "h", "v")])  # fmt: skip
    rig.ledger.record_posted("au", "3", "hris", owner="a", record_id="EMP-3")
    (fourth,) = rig.claim("b")
    rig.ledger.release("au", fourth.offer_id, owner="b", until=None)  # given back: a try
    assert rig.runs.progress(ticket, row.listed_at) == (0, 2, None), "2 and 3 are in a"
    assert rig.claim("b") == []
    with rig.engine.begin() as conn:  # a dies holding 2 and 3
        conn.execute(update(workers).where(workers.c.worker_id == "a")
                     .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)))  # fmt: skip
    assert rig.runs.progress(ticket, row.listed_at) == (1, 0, None), "the run is not drained"
    (again,) = rig.claim("b")
    assert (again.offer_id, again.attempts) == ("2", 2), "3 waits for a fresh listing"
    assert rig.claim("c") == [], "taken again once, by b only"
    rig.ledger.record_processed("au", "2", owner="b")
    assert rig.runs.progress(ticket, row.listed_at) == (0, 0, None)
    assert rig.claim("b") == [], "1 and 2 were processed and 4 tried in this run"
    rig.runs.finish(ticket, "leader", datetime.now(UTC))
    rig.start("au", ["3"], owner="leader")  # PageUp did not take a's mark: 3 is listed again
    (marked,) = rig.claim("b")
    assert marked.offer_id == "3" and all(t.delivered for t in marked.targets)


def test_an_offer_whose_last_target_accepts_while_it_is_being_claimed_is_not_taken(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A late but live claimer posts its last target between another worker's pick and its
    claim: the claim re-checks the offer's own row and leaves it (its worker marks it)."""
    rig = rig_for(db_url)
    rig.start("au", ["1"], owner="leader")
    rig.claim("a")
    rig.ledger.begin_delivery("au", "1", owner="a", route=["hris"],
                              sending=[Sending("hris", "k-1", "h", "v")])  # fmt: skip
    with rig.engine.begin() as conn:  # a's heartbeat is late; a itself is still at work
        conn.execute(update(workers).where(workers.c.worker_id == "a")
                     .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)))  # fmt: skip
    picked_by = due_offers

    def pick_then_a_posts(conn: Connection, **how: Any) -> Any:
        picked = picked_by(conn, **how)
        assert picked == [("au", "1")], "dead-looking a's offer, not yet accepted, is picked"
        rig.ledger.record_posted("au", "1", "hris", owner="a", record_id="EMP-1")
        return picked

    monkeypatch.setattr("worker.store.ledger.due_offers", pick_then_a_posts)
    assert rig.claim("b") == [], "b must not take it: a is marking it"
    monkeypatch.undo()
    one = rig.ledger.get("au", "1")
    assert one is not None and one.lease_owner == "a" and one.status == Status.POSTED
    rig.ledger.record_processed("au", "1", owner="a")  # a still holds it: its mark is recorded


def test_an_expired_claim_is_free_and_a_release_gives_it_back(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1", "2"])
    rig.claim("a", limit=1, lease=-1)  # expired at once
    rig.claim("a", limit=1)  # "2"
    rig.ledger.release("au", "2", owner="a", until=None)
    rig.runs.finish(ticket, "w1", datetime.now(UTC))
    rig.start("au", ["1", "2"], owner="b")
    assert {o.offer_id for o in rig.claim("b")} == {"1", "2"}


def test_offers_are_taken_round_robin_across_sources_within_each_budget(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("big", [str(n) for n in range(100, 130)])
    rig.start("small", ["1", "2"])
    taken = rig.claim(limit=6, budgets={"big": 4, "small": 4})
    by_source = [o.source for o in taken]
    assert by_source.count("small") == 2 and by_source.count("big") == 4
    assert len(rig.claim(limit=50, budgets={"big": 3, "small": 3})) == 3


def test_offers_only_in_an_older_listing_are_left_alone(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1", "2"])
    rig.runs.finish(ticket, "w1", datetime.now(UTC))
    rig.start("au", ["2"])  # "1" left the queue (processed elsewhere, or withdrawn)
    assert [o.offer_id for o in rig.claim()] == ["2"]


def test_a_step_is_recorded_only_while_its_worker_holds_the_offer(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("au", ["1"])
    rig.claim("a")
    rig.ledger.record_step("au", "1", "hris", "employee", status="posting",
                           idempotency_key="k:employee", owner="a")  # fmt: skip
    with pytest.raises(LeaseLost):  # b does not hold the offer
        rig.ledger.record_step("au", "1", "hris", "employee", status="done",
                               idempotency_key="k:employee", record_id="E", owner="b")  # fmt: skip
    assert rig.ledger.steps_done("au", "1", "hris") == {}, "nothing written by b"
    rig.ledger.record_step("au", "1", "hris", "employee", status="done",
                           idempotency_key="k:employee", record_id="EMP-1", owner="a")  # fmt: skip
    assert rig.ledger.steps_done("au", "1", "hris") == {"employee": "EMP-1"}
