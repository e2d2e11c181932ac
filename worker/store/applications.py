"""The applications ledger: one row per (source, target, application), and the jobs read.

    (first sight) ──► sending ──► delivered ◄──► sending (a change: sent as an update)
                        │            │
                        └─► failed ◄─┘   (parked_at: left alone until an admin retries it)
    any ──► removed      (gone from the job's list, read completely)
    any ──► not_chosen   (the map's `when` leaves it out)    any ──► skipped (an admin)

``payload_hash`` is what the target holds: an application mapped to the same hash is not sent.
``sending_hash`` is written before a send, so a crash leaves the outcome visibly unknown; the
retry carries the same idempotency key (it contains the hash) and the map's ``find:`` settles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from worker.store.ledger import Failure
from worker.store.tables import application_jobs, application_runs, applications, manual_actions

DELIVERED, SENDING, FAILED = "delivered", "sending", "failed"
NOT_CHOSEN, REMOVED, SKIPPED = "not_chosen", "removed", "skipped"


@dataclass(frozen=True, slots=True)
class AppKey:
    source: str
    target: str
    application_id: str


@dataclass(frozen=True, slots=True)
class AppState:
    source: str
    target: str
    application_id: str
    job_key: str
    status: str
    payload_hash: str | None
    record_id: str | None
    sends: int
    attempts: int
    stage: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    parked_at: datetime | None

    def waiting(self, now: datetime) -> bool:
        """Parked, skipped, or backing off: not tried in this run."""
        if self.parked_at is not None or self.status == SKIPPED:
            return True
        due = self.next_attempt_at
        if due is not None and due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        return due is not None and due > now


@dataclass(frozen=True, slots=True)
class JobRow:
    source: str
    job_key: str
    listed: int
    invalid_entries: int
    last_listed_at: datetime | None
    last_error: str | None
    http_status: int | None


def _now() -> datetime:
    return datetime.now(UTC)


class ApplicationLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- the pipeline ------------------------------------------------------------------------

    def states(self, source: str, job_key: str) -> dict[tuple[str, str], AppState]:
        """The job's applications, by (application id, target)."""
        a = applications.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(applications).where(a.source == source, a.job_key == job_key)
            ).all()
        return {(row.application_id, row.target): _state(row) for row in rows}

    def record_sending(self, key: AppKey, job_key: str, digest: str) -> None:
        self._upsert(key, job_key, status=SENDING, sending_hash=digest)

    def record_delivered(
        self, key: AppKey, job_key: str, *, digest: str, record_id: str | None, version: str
    ) -> None:
        """The target holds this payload (created or updated)."""
        a = applications.c
        self._upsert(
            key, job_key, status=DELIVERED, payload_hash=digest, sending_hash=None,
            record_id=record_id, mapping_version=version, sends=a.sends + 1, attempts=0,
            stage=None, error_kind=None, last_error=None, http_status=None, delivered_at=_now(),
            next_attempt_at=None, parked_at=None, removed_at=None,
        )  # fmt: skip

    def record_unchanged(self, key: AppKey, job_key: str) -> None:
        """Read again with the same payload: nothing sent (a removed one is back)."""
        self._upsert(key, job_key, status=DELIVERED, removed_at=None, attempts=0,
                     next_attempt_at=None, stage=None, last_error=None)  # fmt: skip

    def record_not_chosen(self, key: AppKey, job_key: str) -> None:
        self._upsert(key, job_key, status=NOT_CHOSEN, attempts=0, next_attempt_at=None,
                     stage=None, last_error=None, removed_at=None)  # fmt: skip

    def record_failure(self, key: AppKey, job_key: str, failure: Failure, attempts: int) -> None:
        """Keep the reason; the target's record id and payload hash stay as they were."""
        self._upsert(
            key, job_key, status=FAILED, attempts=attempts, stage=failure.stage,
            error_kind=failure.kind, last_error=failure.message, http_status=failure.http_status,
            parked_at=_now() if failure.park else None,
            next_attempt_at=None if failure.park else failure.next_attempt_at,
        )  # fmt: skip

    def record_removed(self, source: str, job_key: str, present: set[str]) -> list[AppState]:
        """The job's applications missing from a complete listing: removed (nothing is sent;
        the target keeps its record). Returns those newly removed."""
        gone = [
            s for s in self.states(source, job_key).values()
            if s.application_id not in present and s.status not in (REMOVED, SKIPPED)
        ]  # fmt: skip
        now = _now()
        with self.engine.begin() as conn:
            for state in gone:
                conn.execute(
                    update(applications)
                    .where(*_where(AppKey(source, state.target, state.application_id)))
                    .values(
                        status=REMOVED,
                        removed_at=now,
                        updated_at=now,
                        parked_at=None,
                        next_attempt_at=None,
                    )
                )
        return gone

    def record_job(
        self, source: str, job_key: str, *, listed: int = 0, invalid: int = 0,
        error: str | None = None, status: int | None = None,
    ) -> None:  # fmt: skip
        """A job read (``listed``), or not (``error``, which keeps the last good reading)."""
        now = _now()
        values: dict[str, Any] = {"last_error": error, "http_status": status, "updated_at": now}
        if error is None:
            values |= {"listed": listed, "invalid_entries": invalid, "last_listed_at": now}
        insert_ = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert_(application_jobs).values(source=source, job_key=job_key, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[application_jobs.c.source, application_jobs.c.job_key], set_=values
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def take_lease(self, source: str, owner: str, seconds: float) -> bool:
        """Lead the source's run (or keep leading it) for ``seconds``; False when another
        worker holds a lease that has not expired."""
        now = _now()
        r = application_runs.c
        insert_ = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        with self.engine.begin() as conn:
            conn.execute(insert_(application_runs).values(source=source).on_conflict_do_nothing())
            result = conn.execute(
                update(application_runs)
                .where(
                    r.source == source,
                    (r.lease_owner.is_(None)) | (r.lease_until < now) | (r.lease_owner == owner),
                )
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            )
        return result.rowcount == 1

    def start_run(self, source: str, owner: str) -> None:
        r = application_runs.c
        with self.engine.begin() as conn:
            conn.execute(update(application_runs).where(r.source == source, r.lease_owner == owner)
                         .values(last_started_at=_now()))  # fmt: skip

    def release_lease(self, source: str, owner: str) -> None:
        r = application_runs.c
        with self.engine.begin() as conn:
            conn.execute(
                update(application_runs).where(r.source == source, r.lease_owner == owner)
                .values(lease_owner=None, lease_until=None, last_finished_at=_now())
            )  # fmt: skip

    # -- the commands ------------------------------------------------------------------------

    def jobs(self, source: str | None = None) -> list[JobRow]:
        j = application_jobs.c
        query = select(application_jobs).order_by(j.source, j.job_key)
        if source is not None:
            query = query.where(j.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [JobRow(r.source, r.job_key, r.listed, r.invalid_entries, r.last_listed_at,
                       r.last_error, r.http_status) for r in rows]  # fmt: skip

    def counts(self, source: str | None = None) -> dict[tuple[str, str, str], int]:
        """(source, target, state) -> applications; parked ones count as ``parked``."""
        a = applications.c
        parked = a.parked_at.is_not(None)
        query = select(a.source, a.target, a.status, parked, func.count()).group_by(
            a.source, a.target, a.status, parked
        )
        if source is not None:
            query = query.where(a.source == source)
        counts: dict[tuple[str, str, str], int] = {}
        with self.engine.connect() as conn:
            for src, target, status, is_parked, count in conn.execute(query).all():
                key = (src, target, "parked" if is_parked else str(status))
                counts[key] = counts.get(key, 0) + int(count)
        return counts

    def troubled(self, source: str | None = None, limit: int = 50) -> Sequence[AppState]:
        a = applications.c
        query = select(applications).where(a.status == FAILED)
        if source is not None:
            query = query.where(a.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(a.updated_at).limit(limit)).all()
        return [_state(row) for row in rows]

    def retry(
        self, source: str, application_ids: Sequence[str] | None, *, target: str | None,
        actor: str, reason: str | None,
    ) -> list[AppKey]:  # fmt: skip
        """Parked, failed or skipped applications due again, attempts reset (``None``: every
        parked one of the source). Each is kept in the audit trail."""
        a = applications.c
        query = select(a.source, a.target, a.application_id).where(a.source == source)
        if application_ids is None:
            query = query.where(a.parked_at.is_not(None))
        else:
            query = query.where(a.application_id.in_(list(application_ids)),
                                a.status.in_([FAILED, SKIPPED]))  # fmt: skip
        if target is not None:
            query = query.where(a.target == target)
        now = _now()
        with self.engine.begin() as conn:
            keys = [AppKey(*row) for row in conn.execute(query).all()]
            for key in keys:
                conn.execute(
                    update(applications)
                    .where(*_where(key))
                    .values(
                        parked_at=None,
                        next_attempt_at=None,
                        attempts=0,
                        updated_at=now,
                        status=FAILED,
                    )
                )
                _audit(conn, key, "application_retry", actor, reason, now)
        return keys

    def skip(
        self, source: str, application_id: str, *, target: str | None, actor: str, reason: str
    ) -> list[AppKey]:
        """Never send it again (until retried); the target keeps what it has."""
        a = applications.c
        query = select(a.source, a.target, a.application_id).where(
            a.source == source, a.application_id == application_id
        )
        if target is not None:
            query = query.where(a.target == target)
        now = _now()
        with self.engine.begin() as conn:
            keys = [AppKey(*row) for row in conn.execute(query).all()]
            for key in keys:
                conn.execute(
                    update(applications).where(*_where(key))
                    .values(status=SKIPPED, parked_at=None, next_attempt_at=None, updated_at=now)
                )  # fmt: skip
                _audit(conn, key, "application_skip", actor, reason, now)
        return keys

    # -- the rest ----------------------------------------------------------------------------

    def _upsert(self, key: AppKey, job_key: str, **values: Any) -> None:
        now = _now()
        values = {**values, "job_key": job_key, "updated_at": now}
        first = {
            name: value for name, value in values.items()
            if not hasattr(value, "compare")  # an expression over the row: not on first sight
        }  # fmt: skip
        initial = {"sends": 1 if "sends" in values else 0, "attempts": 0, **first}
        insert_ = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert_(applications).values(
            source=key.source, target=key.target, application_id=key.application_id,
            first_seen_at=now, **initial,
        )  # fmt: skip
        a = applications.c
        statement = statement.on_conflict_do_update(
            index_elements=[a.source, a.target, a.application_id], set_=values
        )
        with self.engine.begin() as conn:
            conn.execute(statement)


def _where(key: AppKey) -> tuple[Any, ...]:
    a = applications.c
    return (a.source == key.source, a.target == key.target, a.application_id == key.application_id)


def _audit(conn: Any, key: AppKey, action: str, actor: str, reason: str | None, at: Any) -> None:
    conn.execute(insert(manual_actions).values(
        source=key.source, offer_id=key.application_id, target=key.target, action=action,
        actor=actor, reason=reason, at=at,
    ))  # fmt: skip


def _state(row: Any) -> AppState:
    m = row._mapping
    return AppState(
        source=m["source"], target=m["target"], application_id=m["application_id"],
        job_key=m["job_key"], status=m["status"], payload_hash=m["payload_hash"],
        record_id=m["record_id"], sends=m["sends"], attempts=m["attempts"], stage=m["stage"],
        last_error=m["last_error"], next_attempt_at=m["next_attempt_at"],
        parked_at=m["parked_at"],
    )  # fmt: skip
