"""Storing pushes: one row per (source, dedup key), repeats counted, in order, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from worker.store.inbox import Inbox
from worker.store.statements import inbox_add
from worker.store.tables import inbox as inbox_table


def test_a_batch_is_stored_in_order_and_a_repeat_in_it_is_counted(inbox: Inbox) -> None:
    assert inbox.add("apna", "a", '{"n":1}')
    added = inbox.add_many(
        [("apna", "b", '{"n":2}'), ("apna", "a", '{"n":1}'), ("pop", "a", "{}"),
         ("apna", "b", '{"n":2}')]
    )  # fmt: skip
    assert added == [True, False, True, False]
    rows = {(item.source, item.dedup_key): item for item in inbox.items()}
    assert sorted(rows) == [("apna", "a"), ("apna", "b"), ("pop", "a")]
    assert rows["apna", "a"].repeats == 1 and rows["apna", "b"].repeats == 1
    assert rows["pop", "a"].repeats == 0 and rows["apna", "b"].payload == '{"n":2}'
    assert all(item.status == "pending" and item.attempts == 0 for item in rows.values())


def test_a_stored_push_reads_back_as_the_statement_of_the_other_path_stores_it(
    inbox: Inbox,
) -> None:
    """On SQLite ``add`` goes through the driver: its row must be the one SQLAlchemy's own
    statement stores (on PostgreSQL both are that statement)."""
    before = datetime.now(UTC)
    inbox.add("apna", "driver", "{}")
    with inbox.engine.begin() as conn:
        conn.execute(
            inbox_add(inbox.engine.dialect.name),
            {"source": "apna", "dedup_key": "statement", "payload": "{}", "status": "pending",
             "now": datetime.now(UTC)},
        )  # fmt: skip
    after = datetime.now(UTC)
    with inbox.engine.connect() as conn:
        rows = {row.dedup_key: row._mapping for row in conn.execute(select(inbox_table))}
    driver, statement = dict(rows["driver"]), dict(rows["statement"])
    for row in (driver, statement):
        received = utc(row.pop("received_at"))
        assert before <= received <= after and received == utc(row.pop("updated_at"))
        row.pop("id"), row.pop("dedup_key")
    assert driver == statement


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
