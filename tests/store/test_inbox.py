"""The inbox's retention of parked pushes: bodies purged past it, rows, reasons and audit kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from worker.store.inbox import Inbox
from worker.store.ledger import Failure
from worker.store.tables import inbox as inbox_table

REASON = "retention: parked over 30 days (inbound.parked_retention_days)"
REFUSED = Failure("post", "permanent", "HTTP 422 from the target", 422, park=True)


def stored(inbox: Inbox, key: str) -> int:
    assert inbox.add("apna", key, json.dumps({"full_name": f"Candidate {key}"}))
    (item,) = [item for item in inbox.items() if item.dedup_key == key]
    return item.id


def parked(inbox: Inbox, key: str, days_ago: float) -> int:
    item_id = stored(inbox, key)
    inbox.record_failure(item_id, REFUSED)
    with inbox.engine.begin() as conn:
        when = datetime.now(UTC) - timedelta(days=days_ago)
        conn.execute(update(inbox_table).where(inbox_table.c.id == item_id).values(parked_at=when))
    return item_id


def purge(inbox: Inbox) -> list[int]:
    return inbox.purge_parked(parked_before=datetime.now(UTC) - timedelta(days=30), reason=REASON)


def test_a_body_parked_past_retention_is_purged_and_the_row_reason_and_audit_stay(
    inbox: Inbox,
) -> None:
    old = parked(inbox, "old", days_ago=31)

    assert purge(inbox) == [old]

    item = inbox.get(old)
    assert item is not None and item.payload is None and item.purged_at is not None
    assert item.state == "purged" and item.status == "failed" and item.parked_at is not None
    assert item.last_error == "HTTP 422 from the target"  # the reason stays
    (action,) = inbox.actions(old)
    assert (action["action"], action["actor"], action["reason"]) == ("purged", "hirebridge", REASON)
    assert action["at"] is not None
    assert inbox.counts() == {("apna", "purged"): 1}


def test_recent_parked_delivered_and_waiting_pushes_are_left_alone(inbox: Inbox) -> None:
    recent = parked(inbox, "recent", days_ago=29)
    delivered = stored(inbox, "delivered")
    inbox.record_delivered(delivered, "T-1")
    waiting = stored(inbox, "waiting")
    backoff = Failure("post", "retriable", "HTTP 503", 503, next_attempt_at=datetime.now(UTC))
    inbox.record_failure(waiting, backoff)
    with inbox.engine.begin() as conn:  # received long ago, but never parked
        long_ago = datetime.now(UTC) - timedelta(days=90)
        conn.execute(update(inbox_table).values(received_at=long_ago))
    before = {item.id: item for item in inbox.items()}

    assert purge(inbox) == []

    assert {item.id: item for item in inbox.items()} == before
    assert before[recent].payload is not None and before[waiting].payload is not None
    assert before[delivered].state == "delivered" and before[delivered].target_id == "T-1"
    assert not any(inbox.actions(item_id) for item_id in before)


def test_a_purge_happens_once_and_a_purged_push_is_never_retried_or_claimed(
    inbox: Inbox,
) -> None:
    old = parked(inbox, "old", days_ago=45)
    recent = parked(inbox, "recent", days_ago=1)
    assert purge(inbox) == [old]
    assert purge(inbox) == []  # a second cycle, or a second replica, finds nothing to do
    assert len(inbox.actions(old)) == 1

    assert inbox.retry_parked(old) == 0
    assert inbox.retry_parked() == 1  # --all-parked: the recent one only
    claimed = inbox.claim_due(owner="test", lease_seconds=60, limit=10,
                              untouched_since=datetime.now(UTC) + timedelta(seconds=1))  # fmt: skip
    assert [item.id for item in claimed] == [recent]
    assert inbox.counts() == {("apna", "purged"): 1, ("apna", "failed"): 1}
