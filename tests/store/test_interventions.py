"""Admin decisions: parked list, retry (per target, reroute), skip, and their audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.store.ledger_rig import rig_for
from worker.store.interventions import Interventions, OfferKey
from worker.store.ledger import Failure, Sending, Status
from worker.store.tables import offers

LATER = datetime.now(UTC) + timedelta(hours=1)


def test_parked_backing_off_and_skipped_offers_wait_and_an_admin_replays_them(
    db_url: str,
) -> None:
    rig = rig_for(db_url)
    ticket = rig.start("au", ["1", "2", "3"])
    rig.claim()
    rig.ledger.record_failed("au", "1", owner="w1",
                             offer=Failure("map", "mapping", "bad", None, park=True))  # fmt: skip
    rig.ledger.record_failed(
        "au", "2", owner="w1", offer=Failure("post", "retriable", "503", 503, next_attempt_at=LATER)
    )
    rig.ledger.release("au", "3", owner="w1", until=None)  # the lanes give back the untried
    admin = Interventions(rig.ledger)
    keys = [OfferKey("au", n) for n in "123"]
    assert admin.skip(keys[2], actor="ops", reason="duplicate in PageUp", marked=False)
    rig.runs.finish(ticket, "w1", datetime.now(UTC))
    rig.start("au", ["1", "2", "3"])
    assert rig.claim() == []
    assert [o.offer_id for o in admin.parked()] == ["1"]

    found = admin.retry([keys[0], keys[2], OfferKey("au", "404")], actor="ops", reason="fixed")
    assert found == [keys[0], keys[2]]
    with rig.engine.connect() as conn:  # the offer page's timeline starts again
        steps = conn.execute(select(offers.c.claimed_at, offers.c.fetched_at, offers.c.mapped_at)
                             .where(offers.c.offer_id == "1")).one()  # fmt: skip
    assert tuple(steps) == (None, None, None)
    retried = {o.offer_id: o for o in rig.claim()}
    assert set(retried) == {"1", "3"} and retried["1"].attempts == 1
    assert [a["action"] for a in admin.actions(keys[2])] == ["skip", "retry"]
    assert admin.actions(keys[2])[0]["actor"] == "ops"


def test_retry_of_one_target_and_reroute_keep_what_was_accepted(db_url: str) -> None:
    rig = rig_for(db_url)
    rig.start("group", ["1"])
    rig.claim()
    sending = [Sending(t, f"k-{t}", "h", "v") for t in ("hris", "payroll_au")]
    rig.ledger.begin_delivery("group", "1", owner="w1", route=["hris", "payroll_au"],
                              sending=sending)  # fmt: skip
    rig.ledger.record_posted("group", "1", "hris", owner="w1", record_id="EMP-1")
    refused = Failure("post", "permanent", "HTTP 422", 422, park=True)
    rig.ledger.record_failed("group", "1", owner="w1", offer=refused,
                             targets={"payroll_au": refused})  # fmt: skip
    admin = Interventions(rig.ledger)
    key = OfferKey("group", "1")
    assert admin.parked(target="payroll_au") and not admin.parked(target="hris")

    assert admin.retry([key], actor="ops", reason="cost centre added", target="payroll_au")
    after = rig.ledger.get("group", "1")
    assert after is not None and after.parked_at is None and after.routed_at is not None
    assert [t.parked_at for t in after.targets] == [None, None]

    assert admin.retry([key], actor="ops", reason="moved to NZ", reroute=True)
    rerouted = rig.ledger.get("group", "1")
    assert rerouted is not None and rerouted.routed_at is None
    assert [(t.target, t.status) for t in rerouted.targets] == [("hris", Status.POSTED)]
    assert [(a["action"], a["target"]) for a in admin.actions(key)] == [
        ("retry", "payroll_au"), ("reroute", None),
    ]  # fmt: skip
