"""Which offers a claim takes, in what order, and that it reads only the open offers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, event, update

from tests.store.ledger_rig import rig_for
from worker.store.tables import offers


def test_a_claim_takes_each_sources_oldest_due_offers_round_robin(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("b-tenant", ["b1", "b2", "b3", "b4"])
    rig.start("a-tenant", ["a1", "a2", "a3"])
    with rig.engine.begin() as conn:  # b3 is parked, b1 skipped: neither is due
        conn.execute(update(offers).where(offers.c.offer_id == "b3")
                     .values(parked_at=offers.c.first_seen_at))  # fmt: skip
        conn.execute(update(offers).where(offers.c.offer_id == "b1").values(status="skipped"))
    taken = rig.claim(limit=5, budgets={"a-tenant": 2, "b-tenant": 3})
    assert [o.offer_id for o in taken] == ["a1", "b2", "a2", "b4"], "rank by rank, source order"


def test_a_processed_offer_is_due_only_once_listed_again(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1", "2"])
    for offer in rig.claim(limit=2):
        rig.ledger.record_processed("au", offer.offer_id, owner="w1")
    rig.runs.finish(ticket, "w1", datetime.now(UTC))
    rig.start("au", ["2"])  # PageUp did not take 2's mark: it came back
    assert [o.offer_id for o in rig.claim()] == ["2"]


def test_a_claim_reads_each_source_through_the_open_offers_index(db_url: str) -> None:
    """The finished offers of a source are never scanned: a claim costs the same at 100
    offers as at 100,000 (the window-ranked query it replaced read the whole table)."""
    rig = rig_for(db_url)
    rig.start("au", [f"{n:03}" for n in range(40)])
    rig.start("nz", ["1"])
    statements: list[tuple[str, Any]] = []

    def grab(conn: Connection, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "first_seen_at" in statement:
            statements.append((statement, params))

    event.listen(rig.engine, "before_cursor_execute", grab)
    assert len(rig.claim(limit=4, budgets={"au": 2, "nz": 2})) == 3
    event.remove(rig.engine, "before_cursor_execute", grab)
    ((statement, params),) = statements
    with rig.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " | ".join(str(row[-1]) for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", params))  # fmt: skip
            assert plan.count("USING INDEX ix_offers_open (source=?)") == 2, plan
            assert "TEMP B-TREE" not in plan, f"no sort: the index is in age order: {plan}"
        else:  # PostgreSQL picks by cost; what matters is that the predicate is implied
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " | ".join(str(row[0]) for row in conn.exec_driver_sql(
                f"EXPLAIN {statement}", params))  # fmt: skip
            assert plan.count("ix_offers_open") == 2, plan


def test_a_claim_works_with_more_sources_in_run_than_sqlite_compounds(db_url: str) -> None:
    """SQLite refuses a compound SELECT of more than 500 terms (SQLITE_MAX_COMPOUND_SELECT):
    one UNION ALL member per source in run made every claim fail once 501 sources were in
    run at once, so that no offer of any source was ever claimed again (the window-ranked
    query it replaced had no such limit)."""
    rig = rig_for(db_url)
    sources = [f"s{n:03}" for n in range(501)]
    for source in sources:
        rig.start(source, ["1"])
    taken = rig.claim(limit=4, budget=1)
    assert [o.source for o in taken] == sources[:4]
