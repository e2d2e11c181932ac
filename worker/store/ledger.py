"""The offers ledger: one row per offer, written at every step so that a crash between any two
steps resumes correctly.

    pending ──► posting ──► posted ──► processed
       │           │           │
       └──► failed ◄┘           └─ (failing after the post keeps "posted": only the mark is retried)

An offer whose row says ``posted`` or ``processed`` is never posted to the HRIS again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, Engine, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from worker.store.tables import offers, runs


class Status(StrEnum):
    PENDING = "pending"
    POSTING = "posting"
    POSTED = "posted"
    PROCESSED = "processed"
    FAILED = "failed"


DELIVERED = (Status.POSTED, Status.PROCESSED)


@dataclass(frozen=True, slots=True)
class OfferState:
    offer_id: str
    status: Status
    stage: str | None
    attempts: int
    hris_id: str | None
    error_kind: str | None
    last_error: str | None
    http_status: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Failure:
    stage: str
    kind: str
    message: str
    http_status: int | None


def _now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """Repository functions over the offers and runs tables of one tenant."""

    def __init__(self, engine: Engine, tenant: str) -> None:
        self._engine = engine
        self._tenant = tenant

    def _key(self, offer_id: str) -> tuple[ColumnElement[bool], ...]:
        return (offers.c.tenant == self._tenant, offers.c.offer_id == offer_id)

    def get(self, offer_id: str) -> OfferState | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(offers).where(*self._key(offer_id))).first()
        return None if row is None else _state(row)

    def begin(self, offer_id: str, run_id: str) -> OfferState:
        """Count an attempt at ``offer_id`` (creating its row on first sight); one statement."""
        now = _now()
        dialect = self._engine.dialect.name
        upsert = (pg_insert if dialect == "postgresql" else sqlite_insert)(offers).values(
            tenant=self._tenant,
            offer_id=offer_id,
            status=Status.PENDING,
            stage="fetch",
            attempts=1,
            last_run_id=run_id,
            first_seen_at=now,
            updated_at=now,
        )
        statement = upsert.on_conflict_do_update(
            index_elements=[offers.c.tenant, offers.c.offer_id],
            set_={"attempts": offers.c.attempts + 1, "last_run_id": run_id, "updated_at": now},
        ).returning(*offers.c)
        with self._engine.begin() as conn:
            return _state(conn.execute(statement).one())

    def record_posting(
        self, offer_id: str, *, payload_hash: str, mapping_version: str, idempotency_key: str
    ) -> None:
        """Written before the HRIS call: from here on the outcome may be unknown after a crash."""
        self._set(
            offer_id,
            status=Status.POSTING,
            stage="post",
            payload_hash=payload_hash,
            mapping_version=mapping_version,
            idempotency_key=idempotency_key,
        )

    def record_posted(self, offer_id: str, *, hris_id: str | None) -> None:
        """Written as soon as the HRIS accepted: the offer must never be posted again."""
        self._set(
            offer_id,
            status=Status.POSTED,
            stage="mark_processed",
            hris_id=hris_id,
            posted_at=_now(),
            error_kind=None,
            last_error=None,
            http_status=None,
        )

    def record_processed(self, offer_id: str) -> None:
        self._set(
            offer_id,
            status=Status.PROCESSED,
            stage=None,
            processed_at=_now(),
            error_kind=None,
            last_error=None,
            http_status=None,
        )

    def record_failure(self, offer_id: str, failure: Failure) -> None:
        """Keep the reason. An offer already delivered stays delivered."""
        keep = offers.c.status.in_([s.value for s in DELIVERED])
        self._set(
            offer_id,
            status=case((keep, offers.c.status), else_=Status.FAILED.value),
            stage=failure.stage,
            error_kind=failure.kind,
            last_error=failure.message,
            http_status=failure.http_status,
        )

    def _set(self, offer_id: str, **values: object) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(offers).where(*self._key(offer_id)).values(updated_at=_now(), **values)
            )

    def counts(self) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(offers.c.status, func.count())
                .where(offers.c.tenant == self._tenant)
                .group_by(offers.c.status)
            ).all()
        return {str(status): int(count) for status, count in rows}

    def unfinished(self, limit: int = 100) -> Sequence[OfferState]:
        """Offers not processed, oldest change first (failures carry their reasons)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(offers)
                .where(offers.c.tenant == self._tenant, offers.c.status != Status.PROCESSED)
                .order_by(offers.c.updated_at)
                .limit(limit)
            ).all()
        return [_state(row) for row in rows]

    def start_run(self, run_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(runs).values(
                    run_id=run_id,
                    tenant=self._tenant,
                    started_at=_now(),
                    listed=0,
                    succeeded=0,
                    failed=0,
                )
            )

    def finish_run(
        self,
        run_id: str,
        *,
        outcome: str,
        listed: int,
        succeeded: int,
        failed: int,
        error: str | None,
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    finished_at=_now(),
                    outcome=outcome,
                    listed=listed,
                    succeeded=succeeded,
                    failed=failed,
                    error=error,
                )
            )

    def last_runs(self, limit: int = 5) -> Sequence[dict[str, object]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(runs)
                .where(runs.c.tenant == self._tenant)
                .order_by(runs.c.started_at.desc())
                .limit(limit)
            ).all()
        return [dict(row._mapping) for row in rows]


def _state(row: object) -> OfferState:
    m = row._mapping  # type: ignore[attr-defined]
    return OfferState(
        offer_id=m["offer_id"],
        status=Status(m["status"]),
        stage=m["stage"],
        attempts=m["attempts"],
        hris_id=m["hris_id"],
        error_kind=m["error_kind"],
        last_error=m["last_error"],
        http_status=m["http_status"],
        updated_at=m["updated_at"],
    )
