"""The inbox: pushes stored before we answer 200, then delivered (and retried) from here.

    pending ──► delivered
       │  ▲
       ▼  │ (next_attempt_at)
     failed ──► parked (parked_at set: left alone until an admin retries it)
                  │
                  ▼ (parked over inbound.parked_retention_days)
                purged (payload deleted, row and reason kept: can no longer be delivered)

``add`` is one statement: a repeated push (same source and dedup key) only counts a repeat,
so Apna's retry or the engine's re-notification is never delivered twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update

from worker.store.ledger import Failure
from worker.store.statements import inbox_add
from worker.store.tables import inbox, inbox_actions
from worker.store.thread import transaction

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    source: str
    dedup_key: str
    payload: str | None
    status: str
    attempts: int
    repeats: int
    last_error: str | None
    target_id: str | None
    received_at: datetime
    parked_at: datetime | None
    purged_at: datetime | None = None

    @property
    def state(self) -> str:
        """pending, failed, delivered, parked or purged."""
        if self.purged_at is not None:
            return "purged"
        return "parked" if self.parked_at is not None else self.status


def _now() -> datetime:
    return datetime.now(UTC)


class Inbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite_add: _DriverInsert | None = None
        if engine.dialect.name == "sqlite":
            self._sqlite_add = _DriverInsert(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def add(self, source: str, dedup_key: str, payload: str) -> bool:
        """Store a push; False when it is a repeat of one already stored (then counted)."""
        return self.add_many([(source, dedup_key, payload)])[0]

    def add_many(self, pushes: Sequence[tuple[str, str, str]]) -> list[bool]:
        """``add`` for each (source, dedup key, payload), in order, in one transaction."""
        with transaction(self._engine) as conn:
            if self._sqlite_add is not None:
                return self._sqlite_add.run(conn, pushes, _now())
            statement = inbox_add(self._engine.dialect.name)
            now = _now()
            return [
                conn.execute(statement, {"source": source, "dedup_key": key, "payload": payload,
                                         "status": PENDING, "now": now}).scalar_one() == 0
                for source, key, payload in pushes
            ]  # fmt: skip

    def claim_due(
        self, *, owner: str, lease_seconds: float, limit: int, untouched_since: datetime
    ) -> list[InboxItem]:
        """Take up to ``limit`` items that are due, for this worker, counting an attempt.

        Only items not changed since ``untouched_since`` (the start of a delivery pass): an item
        that failed during the pass waits for the next one, even with no backoff.
        """
        now = _now()
        row = inbox.c
        due = and_(
            row.updated_at < untouched_since,
            row.status.in_([PENDING, FAILED]),
            row.parked_at.is_(None),
            row.purged_at.is_(None),
            or_(row.next_attempt_at.is_(None), row.next_attempt_at <= now),
            or_(row.lease_until.is_(None), row.lease_until < now),
        )
        with transaction(self._engine) as conn:
            ids = conn.execute(select(row.id).where(due).order_by(row.id).limit(limit)).scalars()
            wanted = list(ids)
            if not wanted:
                return []
            claimed = conn.execute(
                update(inbox)
                .where(row.id.in_(wanted), due)  # re-checked: another replica may have won
                .values(
                    attempts=row.attempts + 1,
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
                .returning(*inbox.c)
            ).all()
        return sorted((_item(r) for r in claimed), key=lambda item: item.id)

    def record_delivered(self, item_id: int, target_id: str | None) -> None:
        """The target accepted it: never delivered again; the payload (PII) is dropped."""
        self._set(
            item_id, status=DELIVERED, target_id=target_id, delivered_at=_now(), payload=None,
            error_kind=None, last_error=None, http_status=None, next_attempt_at=None,
            lease_owner=None, lease_until=None,
        )  # fmt: skip

    def record_failure(self, item_id: int, failure: Failure) -> None:
        self._set(
            item_id, status=FAILED, error_kind=failure.kind, last_error=failure.message,
            http_status=failure.http_status, parked_at=_now() if failure.park else None,
            next_attempt_at=None if failure.park else failure.next_attempt_at,
            lease_owner=None, lease_until=None,
        )  # fmt: skip

    def release_leases_of(self, owner: str) -> int:
        """Free the undelivered items ``owner`` claimed (its deliveries were cancelled)."""
        with transaction(self._engine) as conn:
            result = conn.execute(
                update(inbox)
                .where(inbox.c.lease_owner == owner, inbox.c.status != DELIVERED)
                .values(lease_owner=None, lease_until=None)
            )
        return int(result.rowcount)

    def retry_parked(self, item_id: int | None = None) -> int:
        """Make parked items due again (one, or all); never a purged one, which has no body."""
        condition = [
            inbox.c.parked_at.is_not(None),
            inbox.c.status != DELIVERED,
            inbox.c.purged_at.is_(None),
        ]
        if item_id is not None:
            condition.append(inbox.c.id == item_id)
        with transaction(self._engine) as conn:
            result = conn.execute(
                update(inbox).where(*condition).values(parked_at=None, next_attempt_at=None)
            )
        return int(result.rowcount)

    def purge_parked(self, *, parked_before: datetime, reason: str) -> list[int]:
        """Delete the payload (PII) of items parked before ``parked_before``; keep the row with
        its reason, and audit each purge as done by "hirebridge". Returns the ids purged."""
        row = inbox.c
        due = and_(row.parked_at < parked_before, row.purged_at.is_(None), row.status != DELIVERED)
        with self._engine.connect() as conn:  # most cycles find none: then nothing is written
            if conn.execute(select(row.id).where(due).limit(1)).first() is None:
                return []
        now = _now()
        with transaction(self._engine) as conn:
            purged = sorted(
                conn.execute(
                    update(inbox)
                    .where(due)  # re-checked in the write: a replica purging too finds none
                    .values(payload=None, purged_at=now, updated_at=now)
                    .returning(row.id)
                ).scalars()
            )
            if purged:
                conn.execute(
                    insert(inbox_actions),
                    [{"inbox_id": item_id, "action": "purged", "actor": "hirebridge",
                      "reason": reason, "at": now} for item_id in purged],
                )  # fmt: skip
        return purged

    def get(self, item_id: int) -> InboxItem | None:
        with self._engine.connect() as conn:
            found = conn.execute(select(inbox).where(inbox.c.id == item_id)).first()
        return None if found is None else _item(found)

    def actions(self, item_id: int) -> list[dict[str, object]]:
        """The audit trail of one item, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(inbox_actions)
                .where(inbox_actions.c.inbox_id == item_id)
                .order_by(inbox_actions.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def _set(self, item_id: int, **values: object) -> None:
        with transaction(self._engine) as conn:
            conn.execute(
                update(inbox).where(inbox.c.id == item_id).values(updated_at=_now(), **values)
            )

    def counts(self) -> dict[tuple[str, str], int]:
        """(source, state) → count; the states of ``InboxItem.state``."""
        flags = (inbox.c.source, inbox.c.status, inbox.c.parked_at.is_not(None),
                 inbox.c.purged_at.is_not(None))  # fmt: skip
        with self._engine.connect() as conn:
            rows = conn.execute(select(*flags, func.count()).group_by(*flags)).all()
        counts: dict[tuple[str, str], int] = {}
        for source, status, parked, purged, count in rows:
            key = (str(source), "purged" if purged else "parked" if parked else str(status))
            counts[key] = counts.get(key, 0) + int(count)
        return counts

    def items(self, *, source: str | None = None, limit: int = 100) -> Sequence[InboxItem]:
        query = select(inbox).order_by(inbox.c.id).limit(limit)
        if source is not None:
            query = query.where(inbox.c.source == source)
        with self._engine.connect() as conn:
            return [_item(row) for row in conn.execute(query).all()]

    def undelivered(self, limit: int = 100) -> Sequence[InboxItem]:
        query = select(inbox).where(inbox.c.status != DELIVERED).order_by(inbox.c.id).limit(limit)
        with self._engine.connect() as conn:
            return [_item(row) for row in conn.execute(query).all()]


class _DriverInsert:
    """``statements.inbox_add`` run through the sqlite3 driver: SQLAlchemy's execution of even
    a prepared statement cost 3x the insert itself, and a third of the store thread's time per
    push (py-spy, issue #13). The SQL and the order of its parameters are SQLAlchemy's own
    compilation of the statement, and the timestamps its own text format; sqlite3 keeps the
    statement prepared, and the transaction is the connection's, as before."""

    def __init__(self, engine: Engine) -> None:
        compiled = inbox_add(engine.dialect.name).compile(dialect=engine.dialect)
        assert compiled.positiontup is not None  # SQLite's parameters are positional
        self._sql = compiled.string
        self._order = compiled.positiontup
        self._constants = {k: v for k, v in compiled.params.items() if v is not None}
        # SQLite's timestamps are text in SQLAlchemy's format: its own processor makes them.
        column_type = inbox.c.received_at.type.dialect_impl(engine.dialect)
        to_text = column_type.bind_processor(engine.dialect)
        assert to_text is not None
        self._time: Callable[[datetime], str] = to_text

    def run(
        self, conn: Connection, pushes: Sequence[tuple[str, str, str]], now: datetime
    ) -> list[bool]:
        driver = conn.connection.driver_connection
        assert driver is not None
        values = {**self._constants, "status": PENDING, "now": self._time(now)}
        added = []
        for source, key, payload in pushes:
            values.update(source=source, dedup_key=key, payload=payload)
            cursor = driver.execute(self._sql, tuple(values[name] for name in self._order))
            ((repeats,),) = cursor.fetchall()
            added.append(repeats == 0)
        return added


def _item(row: object) -> InboxItem:
    m = row._mapping  # type: ignore[attr-defined]
    return InboxItem(
        id=m["id"], source=m["source"], dedup_key=m["dedup_key"], payload=m["payload"],
        status=m["status"], attempts=m["attempts"], repeats=m["repeats"],
        last_error=m["last_error"], target_id=m["target_id"], received_at=m["received_at"],
        parked_at=m["parked_at"], purged_at=m["purged_at"],
    )  # fmt: skip
