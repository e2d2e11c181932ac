"""The log of failed calls to PageUp, for PageUp support: written in batches, read by the
support bundle (and the console), purged after its retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from worker.store.db import as_utc
from worker.store.tables import offers, pageup_errors


@dataclass(frozen=True, slots=True)
class FailedCall:
    """One row: what was called, how it failed, what PageUp said (scrubbed). No body."""

    at: datetime
    source: str
    method: str
    route: str
    stage: str
    status: int | None
    attempt: int
    messages: str | None
    request_id: str | None
    duration_ms: int
    offer_id: str | None


class ErrorLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, calls: Sequence[FailedCall]) -> None:
        """Insert a batch in one transaction."""
        if not calls:
            return
        with self._engine.begin() as conn:
            conn.execute(insert(pageup_errors), [asdict(call) for call in calls])

    def purge(self, older_than: datetime) -> int:
        with self._engine.begin() as conn:
            return conn.execute(
                delete(pageup_errors).where(pageup_errors.c.at < older_than)
            ).rowcount

    def since(
        self, when: datetime, sources: Sequence[str] | None = None, limit: int = 100_000
    ) -> list[FailedCall]:
        """The calls that failed at or after ``when``, oldest first."""
        e = pageup_errors.c
        query = select(pageup_errors).where(e.at >= when).order_by(e.at, e.id).limit(limit)
        if sources:
            query = query.where(e.source.in_(list(sources)))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_call(row) for row in rows]

    def offer_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Each offer's state as an operator reads it: pending, posted, processed, failed,
        parked, skipped (offers the ledger does not know are left out)."""
        wanted = set(keys)
        found: dict[tuple[str, str], str] = {}
        ids = sorted({offer_id for _, offer_id in wanted})
        o = offers.c
        with self._engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(
                    select(o.source, o.offer_id, o.status, o.parked_at).where(
                        o.offer_id.in_(ids[start : start + 500])
                    )
                ).all()
                for source, offer_id, status, parked_at in rows:
                    if (source, offer_id) in wanted:
                        parked = parked_at is not None and status == "failed"
                        found[(source, offer_id)] = "parked" if parked else str(status)
        return found


def _call(row: Any) -> FailedCall:
    return FailedCall(
        at=as_utc(row.at), source=row.source, method=row.method, route=row.route,
        stage=row.stage, status=row.status, attempt=row.attempt, messages=row.messages,
        request_id=row.request_id, duration_ms=row.duration_ms, offer_id=row.offer_id,
    )  # fmt: skip
