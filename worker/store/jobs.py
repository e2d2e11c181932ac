"""The job postings ledger: one row per source job.

    (new) ──► creating ──► open ◄──► closed
                 │           │
                 └──► failed ◄┘   (parked_at: left alone until an admin retries or links it)

``creating`` is written before the create call: the ATS takes no idempotency key, so after a
crash there the retry's create meets 409 JOB_EXISTS and is reconciled, not duplicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from worker.store.ledger import Failure
from worker.store.tables import jobs

CREATING, OPEN, CLOSED, FAILED = "creating", "open", "closed", "failed"


@dataclass(frozen=True, slots=True)
class JobState:
    source_id: str
    ats_job_id: str | None
    status: str
    payload_hash: str | None
    attempts: int
    last_error: str | None
    closed_at: datetime | None
    next_attempt_at: datetime | None
    parked_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


class JobLedger:
    def __init__(self, engine: Engine, ats_source: str) -> None:
        self._engine = engine
        self._source = ats_source

    def all(self) -> dict[str, JobState]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.ats_source == self._source)).all()
        return {str(row.source_id): _state(row) for row in rows}

    def begin_attempt(self, source_id: str) -> None:
        """Count an attempt (inserting the row on first sight)."""
        now = _now()
        insert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(jobs)
            .values(
                ats_source=self._source,
                source_id=source_id,
                status=FAILED,
                attempts=1,
                first_seen_at=now,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=[jobs.c.ats_source, jobs.c.source_id],
                set_={"attempts": jobs.c.attempts + 1, "updated_at": now},
            )
        )
        with self._engine.begin() as conn:
            conn.execute(statement)

    def record_creating(self, source_id: str) -> None:
        self._set(source_id, status=CREATING)

    def record_synced(
        self, source_id: str, *, ats_job_id: str, payload_hash: str, mapping_version: str
    ) -> None:
        """The ATS holds this payload for the job (created, linked, updated or reopened)."""
        self._set(
            source_id, status=OPEN, ats_job_id=ats_job_id, payload_hash=payload_hash,
            mapping_version=mapping_version, synced_at=_now(), closed_at=None, attempts=0,
            error_kind=None, last_error=None, http_status=None, next_attempt_at=None,
            parked_at=None,
        )  # fmt: skip

    def record_closed(self, source_id: str) -> None:
        self._set(
            source_id, status=CLOSED, closed_at=_now(), payload_hash=None, attempts=0,
            error_kind=None, last_error=None, http_status=None, next_attempt_at=None,
        )  # fmt: skip

    def record_failure(self, source_id: str, failure: Failure) -> None:
        """Keep the reason; a job the ATS already has keeps its id (and its status, unless the
        failure is a create that never got an id)."""
        self._set(
            source_id, error_kind=failure.kind, last_error=failure.message,
            http_status=failure.http_status, parked_at=_now() if failure.park else None,
            next_attempt_at=None if failure.park else failure.next_attempt_at,
        )  # fmt: skip

    def link(self, source_id: str, ats_job_id: str) -> None:
        """An admin's decision: this source job is that ATS job (sent an update on the next run)."""
        now = _now()
        insert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        values = {"ats_job_id": ats_job_id, "status": OPEN, "payload_hash": None,
                  "parked_at": None, "next_attempt_at": None, "updated_at": now}  # fmt: skip
        statement = (
            insert(jobs)
            .values(
                ats_source=self._source,
                source_id=source_id,
                attempts=0,
                first_seen_at=now,
                **values,
            )
            .on_conflict_do_update(
                index_elements=[jobs.c.ats_source, jobs.c.source_id], set_=values
            )
        )
        with self._engine.begin() as conn:
            conn.execute(statement)

    def retry_parked(self) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.ats_source == self._source, jobs.c.parked_at.is_not(None))
                .values(parked_at=None, next_attempt_at=None, attempts=0)
            )
        return int(result.rowcount)

    def counts(self) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(jobs.c.status, jobs.c.parked_at.is_not(None), func.count())
                .where(jobs.c.ats_source == self._source)
                .group_by(jobs.c.status, jobs.c.parked_at.is_not(None))
            ).all()
        counts: dict[str, int] = {}
        for status, parked, count in rows:
            key = "parked" if parked else str(status)
            counts[key] = counts.get(key, 0) + int(count)
        return counts

    def troubled(self, limit: int = 50) -> Sequence[JobState]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(jobs)
                .where(jobs.c.ats_source == self._source, jobs.c.last_error.is_not(None))
                .order_by(jobs.c.updated_at)
                .limit(limit)
            ).all()
        return [_state(row) for row in rows]

    def _set(self, source_id: str, **values: object) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.ats_source == self._source, jobs.c.source_id == source_id)
                .values(updated_at=_now(), **values)
            )


def _state(row: object) -> JobState:
    m = row._mapping  # type: ignore[attr-defined]
    return JobState(
        source_id=m["source_id"], ats_job_id=m["ats_job_id"], status=m["status"],
        payload_hash=m["payload_hash"], attempts=m["attempts"], last_error=m["last_error"],
        closed_at=m["closed_at"], next_attempt_at=m["next_attempt_at"], parked_at=m["parked_at"],
    )  # fmt: skip
