"""Paging through the ledger for the console (worker/store/browse.py), on each database kind:
every filter, the id search, pages in order, and the bounded count."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from tests.store.ledger_rig import rig_for
from worker.store import browse
from worker.store.browse import Browse, OfferFilter
from worker.store.tables import offer_targets, offers


def _fill(engine: object, count: int) -> None:
    now = datetime.now(UTC)
    rows, targets = [], []
    for index in range(count):
        source = "au" if index % 2 else "nz"
        failed = index % 5 == 0
        rows.append({
            "source": source, "offer_id": f"{5000 + index}", "attempts": 1,
            "status": "failed" if failed else "processed", "stage": "map" if failed else None,
            "first_seen_at": now, "updated_at": now,
            "parked_at": now if failed and index % 10 == 0 else None,
        })  # fmt: skip
        targets.append({
            "source": source, "offer_id": f"{5000 + index}", "attempts": 1, "updated_at": now,
            "target": "hris" if index % 3 else "payroll",
            "status": "pending" if failed else "posted",
            "parked_at": now if index == 5 else None,  # parked at its target only
        })  # fmt: skip
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(offers), rows)
        conn.execute(insert(offer_targets), targets)


def test_filters_search_and_pages(db_url: str) -> None:
    rig = rig_for(db_url)
    _fill(rig.engine, 60)
    b = Browse(rig.engine)
    sources = ["au", "nz"]
    first = b.offers(OfferFilter(), page=1, size=25, sources=sources)
    assert (first.total, first.pages, first.more) == (60, 3, False)
    second = b.offers(OfferFilter(), page=2, size=25, sources=sources)
    keys = [(o.source, o.offer_id) for o in [*first.offers, *second.offers]]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 50
    assert all(o.targets for o in first.offers)

    def ids(wanted: OfferFilter) -> set[str]:
        return {o.offer_id for o in b.offers(wanted, size=100, sources=sources).offers}

    assert ids(OfferFilter(source="au")) == {f"{5000 + i}" for i in range(60) if i % 2}
    assert ids(OfferFilter(status="failed")) == {f"{5000 + i}" for i in range(0, 60, 5)}
    assert ids(OfferFilter(stage="map", source="nz")) == {f"{5000 + i}" for i in range(0, 60, 10)}
    assert ids(OfferFilter(target="payroll")) == {f"{5000 + i}" for i in range(0, 60, 3)}
    parked = {f"{5000 + i}" for i in range(0, 60, 10)} | {"5005"}
    assert ids(OfferFilter(parked=True)) == parked
    assert ids(OfferFilter(parked=False)) == {f"{5000 + i}" for i in range(60)} - parked
    assert ids(OfferFilter(offer_id="5012")) == {"5012"}
    assert ids(OfferFilter(offer_id="501*")) == {f"{5010 + i}" for i in range(10)}
    assert ids(OfferFilter(offer_id="50%*")) == set()  # not a LIKE pattern
    assert b.stages() == ["map"]


def test_the_count_stops_at_the_cap_and_pages_go_on(db_url: str, monkeypatch: object) -> None:
    rig = rig_for(db_url)
    _fill(rig.engine, 30)
    monkeypatch.setattr(browse, "COUNT_CAP", 20)  # type: ignore[attr-defined]
    page = Browse(rig.engine).offers(OfferFilter(), page=2, size=10)
    assert page.more and page.total == 20 and page.pages == 3
    assert len(Browse(rig.engine).offers(OfferFilter(), page=3, size=10).offers) == 10
