"""An existing single-tenant database migrates on start-up with no manual step, and its offers
resume correctly: one source named ``pageup``, one target named ``hris``."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import Sims
from tests.pipelines.test_offers import run_sync
from worker.mapping.engine import apply_map
from worker.mapping.loader import load_field_map
from worker.settings import DatabaseSettings
from worker.store.attempts import AttemptHistory
from worker.store.db import create_store_engine, migrate
from worker.store.interventions import Interventions, OfferKey
from worker.store.ledger import Ledger, Status
from worker.store.runs import Runs

OLD_KEY = "hirebridge:218:offer:{}"  # the key formula of the single-tenant versions
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# (offer, status, stage, hris id, parked): as version 0006 left them.
LEGACY = [
    ("900101", "processed", None, "EMP-000001", False),
    ("900102", "posted", "mark_processed", "EMP-000002", False),  # crashed before the mark
    ("900103", "posting", "post", None, False),  # crashed during the post: outcome unknown
    ("900104", "failed", "map", None, True),  # parked: no tax file number
    ("900105", "pending", "fetch", None, False),
]


def legacy_database(url: str) -> Engine:
    engine = create_store_engine(DatabaseSettings(url=url))
    migrate(engine, "0006")
    with engine.begin() as conn:
        for offer_id, status, stage, hris_id, parked in LEGACY:
            conn.execute(
                text(
                    "INSERT INTO offers (tenant, offer_id, status, stage, attempts, hris_id, "
                    "idempotency_key, payload_hash, mapping_version, first_seen_at, updated_at, "
                    "posted_at, processed_at, parked_at) VALUES ('218', :id, :status, :stage, 1, "
                    ":hris, :key, 'h', 'v', :now, :now, :posted, :processed, :parked)"
                ),
                {
                    "id": offer_id,
                    "status": status,
                    "stage": stage,
                    "hris": hris_id,
                    "now": NOW,
                    "key": OLD_KEY.format(offer_id) if status != "pending" else None,
                    "posted": NOW if hris_id else None,
                    "processed": NOW if status == "processed" else None,
                    "parked": NOW if parked else None,
                },
            )
        conn.execute(text("INSERT INTO runs (run_id, tenant, started_at, listed, succeeded, "
                          "failed) VALUES ('r0', '218', :now, 5, 1, 1)"), {"now": NOW})  # fmt: skip
        conn.execute(text("INSERT INTO manual_actions (tenant, offer_id, action, actor, reason, "
                          "at) VALUES ('218', '900104', 'retry', 'ops', 'map fixed', :now)"),
                     {"now": NOW})  # fmt: skip
    return engine


def test_a_single_tenant_database_becomes_source_pageup_and_target_hris(db_url: str) -> None:
    engine = legacy_database(db_url)
    migrate(engine)
    ledger = Ledger(engine)
    posted = ledger.get("pageup", "900102")
    assert posted is not None and posted.routed_at is not None
    assert [(t.target, t.status, t.record_id) for t in posted.targets] == [
        ("hris", Status.POSTED, "EMP-000002")
    ]
    posting = ledger.get("pageup", "900103")
    assert posting is not None and posting.status == Status.PENDING
    assert [(t.status, t.idempotency_key) for t in posting.targets] == [
        (Status.POSTING, OLD_KEY.format("900103"))
    ]
    parked = ledger.get("pageup", "900104")
    assert parked is not None and parked.parked_at is not None and parked.routed_at is None
    assert ledger.counts() == {"processed": 1, "posted": 1, "posting": 1, "failed": 1,
                               "pending": 1}  # fmt: skip
    assert [run["source"] for run in Runs(engine).last()] == ["pageup"]
    action = Interventions(ledger).actions(OfferKey("pageup", "900104"))
    assert [(a["action"], a["actor"]) for a in action] == [("retry", "ops")]
    engine.dispose()


@pytest.mark.parametrize("sims", [{"offers": 5}], indirect=True)
def test_migrated_offers_resume_without_duplicates(sims: Sims, db_url: str) -> None:
    """The posted offer is only marked; the one whose post had an unknown outcome is resent
    with the key it was first sent with (the HRIS replays it); the new one is posted."""
    engine = legacy_database(db_url)
    engine.dispose()
    sims.pageup.processed["900101"] = 1  # processed before the upgrade: left the queue
    field_map = load_field_map(sims.settings(db_url).targets["hris"].mapping)
    for sample in sims.samples[1:3]:  # the HRIS had stored 900102 and 900103
        document = {"offer": sample.offer, "onboarding": sample.onboarding,
                    "application": sample.application_form}  # fmt: skip
        key = OLD_KEY.format(sample.offer_id)
        httpx.post(
            f"{sims.hris_url}/api/employees",
            json=apply_map(field_map, document).payload,
            headers={"X-API-Key": "hris-sim-key", "Idempotency-Key": key},
        ).raise_for_status()

    report = run_sync(sims.settings(db_url))

    assert report.succeeded == 3  # 900102 marked, 900103 replayed and marked, 900105 posted
    assert sims.hris.calls["idempotent_replay"] == 1
    assert dict(sims.hris_counts()) == {"900102": 1, "900103": 1, "900105": 1}
    marked = {k for k, v in sims.pageup.processed.items() if v}
    assert marked == {"900101", "900102", "900103", "900105"}
    assert "900104" not in sims.hris_counts(), "still parked, waiting for an admin"
    # The upgraded database keeps each attempt from the first run on (migration 0012).
    engine = create_store_engine(DatabaseSettings(url=db_url))
    history = AttemptHistory(engine)
    outcomes = {offer_id: [(r.target, r.outcome) for r in history.of("pageup", offer_id)]
                for offer_id in ("900102", "900103", "900104", "900105")}  # fmt: skip
    engine.dispose()
    assert outcomes == {
        "900102": [(None, "processed")],  # posted before the upgrade: only marked now
        "900103": [(None, "processed"), ("hris", "posted")],
        "900104": [],  # parked before the upgrade, not tried since
        "900105": [(None, "processed"), ("hris", "posted")],
    }
