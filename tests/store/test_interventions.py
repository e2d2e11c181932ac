"""Admin decisions: parked list, retry, skip, and their audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.store.test_ledger import claim, ledger_for
from worker.store.interventions import Interventions
from worker.store.ledger import Failure


def test_parked_backing_off_and_skipped_offers_are_not_due(db_url: str) -> None:
    ledger = ledger_for(db_url)
    for offer_id in "123":
        claim(ledger, offer_id)
    ledger.record_failure("1", Failure("map", "mapping", "bad", None, park=True))
    later = datetime.now(UTC) + timedelta(hours=1)
    ledger.record_failure("2", Failure("post", "retriable", "HTTP 503", 503, next_attempt_at=later))
    assert Interventions(ledger).skip("3", actor="ops", reason="duplicate in PageUp", marked=False)
    assert [claim(ledger, o) for o in "123"] == [None, None, None]
    assert [o.offer_id for o in Interventions(ledger).parked()] == ["1"]

    assert Interventions(ledger).retry(["1", "3", "404"], actor="ops", reason="map fixed") == [
        "1",
        "3",
    ]
    retried = claim(ledger, "1")
    assert retried is not None and retried.attempts == 1
    assert claim(ledger, "3") is not None
    assert [a["action"] for a in Interventions(ledger).actions("3")] == ["skip", "retry"]
    assert Interventions(ledger).actions("3")[0]["actor"] == "ops"
