"""Every attempt's outcome is kept with its reason, map version and next try, in the
transaction of the state change it explains; and the latest attempt's claimed, fetched and
mapped times. On both stores."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from tests.store.ledger_rig import Rig, rig_for
from worker.store.attempts import AttemptHistory, AttemptRow
from worker.store.ledger import Failure, LeaseLost, Sending
from worker.store.tables import offer_attempts, offers
from worker.store.thread import StoreThread

LATER = datetime.now(UTC) + timedelta(hours=1)


def _steps(rig: Rig, offer_id: str) -> tuple[datetime | None, ...]:
    o = offers.c
    with rig.engine.connect() as conn:
        row = conn.execute(
            select(o.claimed_at, o.fetched_at, o.mapped_at).where(o.offer_id == offer_id)
        ).one()
    return tuple(row)


def _history(rig: Rig, offer_id: str, source: str = "au") -> list[AttemptRow]:
    return AttemptHistory(rig.engine).of(source, offer_id)


def test_each_target_outcome_is_kept_with_reason_version_and_next_try(db_url: str) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1"])
    rig.claim()
    claimed, fetched, mapped = _steps(rig, "1")
    assert claimed is not None and (fetched, mapped) == (None, None)
    got, mapped_at = datetime.now(UTC), datetime.now(UTC)
    sending = [Sending("hris", "k-h", "h", "hris-v1"), Sending("payroll", "k-p", "h", "pay-v7")]
    rig.ledger.begin_delivery("au", "1", owner="w1", route=["hris", "payroll"], sending=sending,
                              fetched_at=got, mapped_at=mapped_at)  # fmt: skip
    assert all(step is not None for step in _steps(rig, "1"))
    rig.ledger.record_posted("au", "1", "hris", owner="w1", record_id="EMP-1")
    retry = Failure("post", "retriable", "payroll answered 503", 503, next_attempt_at=LATER)
    rig.ledger.record_failed("au", "1", owner="w1", offer=retry, targets={"payroll": retry})

    newest, first = _history(rig, "1")
    assert (first.target, first.outcome, first.attempt, first.record_id) == (
        "hris", "posted", 1, "EMP-1")  # fmt: skip
    assert first.mapping_version == "hris-v1" and first.reason is None
    assert first.started_at is not None and first.run_id == ticket.run_id
    assert (newest.target, newest.outcome, newest.stage, newest.http_status) == (
        "payroll", "failed", "post", 503)  # fmt: skip
    assert newest.reason == "payroll answered 503" and newest.mapping_version == "pay-v7"
    assert newest.next_attempt_at is not None
    assert abs((newest.next_attempt_at - LATER).total_seconds()) < 1
    assert newest.finished_at >= first.finished_at >= newest.started_at  # type: ignore[operator]


def test_a_new_claim_starts_a_new_timeline_and_parks_with_the_map_that_failed(
    db_url: str,
) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1"])
    rig.claim()
    now = datetime.now(UTC)
    rig.ledger.begin_delivery("au", "1", owner="w1", route=["hris"], sending=[
        Sending("hris", "k", "h", "v1")], fetched_at=now, mapped_at=now)  # fmt: skip
    retry = Failure("post", "retriable", "timed out", None, next_attempt_at=now)
    rig.ledger.record_failed("au", "1", owner="w1", offer=retry, targets={"hris": retry})
    rig.runs.finish(ticket, "w1", now)
    rig.start("au", ["1"])
    (again,) = rig.claim()
    assert again.attempts == 2
    claimed, fetched, mapped = _steps(rig, "1")
    assert (fetched, mapped) == (None, None), "the claim clears the last attempt's steps"
    assert claimed is not None and claimed >= now.replace(tzinfo=claimed.tzinfo)
    refused = Failure("map", "mapping", "tax file number missing", None, park=True,
                      mapping_version="v2")  # fmt: skip
    rig.ledger.begin_delivery("au", "1", owner="w1", route=None, sending=[], fetched_at=now)
    rig.ledger.record_failed("au", "1", owner="w1", offer=refused, targets={"hris": refused})
    parked, failed = _history(rig, "1")
    assert (parked.outcome, parked.attempt, parked.mapping_version) == ("parked", 2, "v2")
    assert parked.next_attempt_at is None and parked.stage == "map"
    assert (failed.outcome, failed.attempt, failed.mapping_version) == ("failed", 1, "v1")
    _, fetched, mapped = _steps(rig, "1")
    assert fetched is not None and mapped is None, "no map applied in this attempt"


def test_an_offer_failure_and_the_mark_are_rows_without_a_target(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("au", ["1", "2"])
    rig.claim()
    fetch = Failure("fetch", "retriable", "pageup answered 502", 502, next_attempt_at=LATER)
    rig.ledger.record_failed("au", "1", owner="w1", offer=fetch)
    fetched = datetime.now(UTC)
    no_route = Failure("route", "mapping", "no route takes it", None, park=True)
    rig.ledger.record_failed("au", "2", owner="w1", offer=no_route, fetched_at=fetched)
    (row,) = _history(rig, "1")
    assert (row.target, row.outcome, row.stage, row.http_status) == (None, "failed", "fetch", 502)
    assert _steps(rig, "1")[1] is None
    (row,) = _history(rig, "2")
    assert (row.target, row.outcome, row.stage) == (None, "parked", "route")
    assert _steps(rig, "2")[1] is not None, "fetched, though no route took it"

    rig2 = rig_for(db_url)
    rig2.start("nz", ["9"])
    rig2.claim()
    rig2.ledger.begin_delivery("nz", "9", owner="w1", route=["hris"],
                               sending=[Sending("hris", "k", "h", "v")])  # fmt: skip
    rig2.ledger.record_posted("nz", "9", "hris", owner="w1", record_id="E9")
    rig2.ledger.record_processed("nz", "9", owner="w1")
    marked, posted = _history(rig2, "9", "nz")
    assert (marked.target, marked.outcome, marked.stage) == (None, "processed", "mark_processed")
    assert (posted.target, posted.outcome) == ("hris", "posted")


def test_a_worker_that_lost_its_lease_writes_no_attempt(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("au", ["1"])
    rig.claim()
    rig.ledger.begin_delivery("au", "1", owner="w1", route=["hris"],
                              sending=[Sending("hris", "k", "h", "v")])  # fmt: skip
    failure = Failure("post", "retriable", "boom", 500, next_attempt_at=LATER)
    with pytest.raises(LeaseLost):
        rig.ledger.record_failed("au", "1", owner="other", offer=failure,
                                 targets={"hris": failure})  # fmt: skip
    with pytest.raises(LeaseLost):
        rig.ledger.record_posted("au", "1", "hris", owner="other", record_id="E1")
    assert _history(rig, "1") == []


def test_grouped_writes_add_no_commit_for_the_attempts(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("au", [str(n) for n in range(6)])
    claimed = rig.claim()
    for offer in claimed:
        sending = [Sending("hris", "k" + offer.offer_id, "h", "v")]
        rig.ledger.begin_delivery("au", offer.offer_id, owner="w1", route=["hris"],
                                  sending=sending)  # fmt: skip
    store = StoreThread(rig.engine, window=0.5, max_rows=len(claimed))

    async def post_all() -> None:
        await asyncio.gather(*(
            store.write(rig.ledger.record_posted, "au", o.offer_id, "hris", owner="w1",
                        record_id="E" + o.offer_id)
            for o in claimed
        ))  # fmt: skip

    try:
        asyncio.run(post_all())
    finally:
        store.close()
    assert store.commits == 1, "the attempts rode on the state changes' one commit"
    with rig.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(offer_attempts)).scalar() == 6


def test_prune_drops_old_rows_and_keeps_the_newest_per_offer_and_target(db_url: str) -> None:
    rig = rig_for(db_url)
    now = datetime.now(UTC)
    rows = [
        {"source": "au", "offer_id": "1", "target": target, "attempt": n, "outcome": "failed",
         "finished_at": now - timedelta(days=100 if n == 0 else 0, seconds=-n)}
        for target in ("hris", None) for n in range(8)
    ] + [{"source": "au", "offer_id": "2", "target": "hris", "attempt": 1, "outcome": "failed",
          "finished_at": now}]  # fmt: skip
    with rig.engine.begin() as conn:
        conn.execute(insert(offer_attempts), rows)
    history = AttemptHistory(rig.engine)
    assert history.prune(now - timedelta(days=90), keep=5) == 2 + 2 * 2
    kept = history.of("au", "1")
    assert sorted((r.target or "", r.attempt) for r in kept) == sorted(
        (target, n) for target in ("hris", "") for n in range(3, 8)
    ), "the newest five of each"
    assert [r.attempt for r in history.of("au", "2")] == [1]
    assert history.prune(now - timedelta(days=90), keep=5) == 0
