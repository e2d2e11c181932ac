"""The history of an offer's attempts: one row per outcome, for the console's offer page.

An attempt is one claim of the offer by a worker (``offers.attempts`` counts them). It ends
with a row per target it decided (``posted``, ``failed`` with its next try, or ``parked``) and,
for the offer as a whole, one with no target: ``processed`` (marked in PageUp), or ``failed``
or ``parked`` at the fetch, the route or the mark. Each row carries the stage, the reason
(already scrubbed, as the ledger keeps it: never personal data), the HTTP status, the target's
record id, the field map's version and the run.

Rows are written by the ledger (``record``), in the transaction of the state change they
explain, so they cost no commit of their own and a lost lease writes none. An attempt given
back untried (a halted source, a resting target, a stop) or cut short by a crash leaves no
row; its claim still counts, so attempt numbers may skip. An operator's retry starts the count
again at 1 (the decisions table says when).

Retention: ``prune`` (hourly, with the other housekeeping, and at start-up) deletes rows older
than ``database.attempt_history_days`` and keeps at most ``KEEP_PER_TARGET`` newest rows per
offer and target, so that an offer retried for months cannot grow the table without bound.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Insert,
    Integer,
    String,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
)

from worker.store.db import as_utc, as_utc_or_none
from worker.store.tables import offer_attempts, offer_targets, offers

if TYPE_CHECKING:
    from worker.store.ledger import Failure

KEEP_PER_TARGET = 50  # newest rows kept per (offer, target); the offer's own rows likewise
SHOWN = 200  # rows an offer page shows at most (newest first)
PRUNE_CHUNK = 500  # ids per DELETE when pruning
OUTCOMES = ("posted", "processed", "failed", "parked")


@dataclass(frozen=True, slots=True)
class AttemptRow:
    target: str | None  # None: the offer as a whole (fetch, route, mark)
    attempt: int
    run_id: str | None
    started_at: datetime | None
    finished_at: datetime
    outcome: str
    stage: str | None
    error_kind: str | None
    reason: str | None
    http_status: int | None
    record_id: str | None
    mapping_version: str | None
    next_attempt_at: datetime | None


@functools.cache
def _insert() -> Insert:
    """INSERT ... SELECT: the attempt number, run and claim time come from the offer's row,
    and the map version, unless given, from the target's (set when it was sent)."""
    o, t = offers.c, offer_targets.c
    target = bindparam("target", type_=String)
    sent_version = (
        select(t.mapping_version)
        .where(t.source == o.source, t.offer_id == o.offer_id, t.target == target)
        .scalar_subquery()
    )
    when = DateTime(timezone=True)
    row = select(
        o.source, o.offer_id, target, o.attempts, o.last_run_id,
        o.claimed_at, bindparam("now", type_=when), bindparam("outcome", type_=String),
        bindparam("stage", type_=String), bindparam("error_kind", type_=String),
        bindparam("reason", type_=Text), bindparam("http_status", type_=Integer),
        bindparam("record_id", type_=String),
        func.coalesce(bindparam("mapping_version", type_=String), sent_version),
        bindparam("next_attempt_at", type_=when),
    ).where(o.source == bindparam("source"), o.offer_id == bindparam("offer_id"))  # fmt: skip
    a = offer_attempts.c
    columns = [a.source, a.offer_id, a.target, a.attempt, a.run_id, a.started_at,
               a.finished_at, a.outcome, a.stage, a.error_kind, a.reason, a.http_status,
               a.record_id, a.mapping_version, a.next_attempt_at]  # fmt: skip
    return insert(offer_attempts).from_select(columns, row)


def record(
    conn: Connection,
    source: str,
    offer_id: str,
    *,
    target: str | None,
    outcome: str,
    now: datetime,
    stage: str | None = None,
    error_kind: str | None = None,
    reason: str | None = None,
    http_status: int | None = None,
    record_id: str | None = None,
    mapping_version: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Add an attempt's outcome, on the ledger's connection (its transaction)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"attempt outcome {outcome!r}: not one of {', '.join(OUTCOMES)}")
    conn.execute(_insert(), {
        "source": source, "offer_id": offer_id, "target": target, "outcome": outcome,
        "now": now, "stage": stage, "error_kind": error_kind, "reason": reason,
        "http_status": http_status, "record_id": record_id,
        "mapping_version": mapping_version, "next_attempt_at": next_attempt_at,
    })  # fmt: skip


def record_failure(
    conn: Connection,
    source: str,
    offer_id: str,
    target: str | None,
    failure: Failure,
    now: datetime,
) -> None:
    """A failure's row: ``failed`` with its next try, or ``parked``."""
    record(
        conn, source, offer_id, target=target, outcome="parked" if failure.park else "failed",
        now=now, stage=failure.stage, error_kind=failure.kind, reason=failure.message,
        http_status=failure.http_status, mapping_version=failure.mapping_version,
        next_attempt_at=None if failure.park else failure.next_attempt_at,
    )  # fmt: skip


class AttemptHistory:
    """Reading and pruning the attempts of the offers in one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def of(self, source: str, offer_id: str, limit: int = SHOWN) -> list[AttemptRow]:
        """An offer's attempts, newest first (at most ``limit``)."""
        a = offer_attempts.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(offer_attempts)
                .where(a.source == source, a.offer_id == offer_id)
                .order_by(a.id.desc())
                .limit(limit)
            ).all()
        return [_row(r) for r in rows]

    def steps(self, source: str, offer_id: str) -> dict[str, datetime | None]:
        """When the latest attempt claimed the offer, fetched its document and mapped it."""
        o = offers.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(o.claimed_at, o.fetched_at, o.mapped_at).where(
                    o.source == source, o.offer_id == offer_id
                )
            ).first()
        if row is None:
            return {}
        return {
            "claimed": as_utc_or_none(row[0]),
            "fetched": as_utc_or_none(row[1]),
            "mapped": as_utc_or_none(row[2]),
        }

    def prune(self, older_than: datetime, keep: int = KEEP_PER_TARGET) -> int:
        """Delete rows finished before ``older_than``, and all but the newest ``keep`` of each
        offer and target. Returns how many were deleted.

        The surplus is found by a read (a scan of the offer index), which takes no write lock;
        the deletes that follow are short, and usually there are none."""
        a = offer_attempts.c
        rank = func.row_number().over(
            partition_by=(a.source, a.offer_id, a.target), order_by=a.id.desc()
        )
        ranked = select(a.id, rank.label("rank")).subquery()
        with self._engine.connect() as conn:
            surplus = list(conn.execute(select(ranked.c.id).where(ranked.c.rank > keep)).scalars())
        deleted = 0
        with self._engine.begin() as conn:
            deleted += conn.execute(
                delete(offer_attempts).where(a.finished_at < older_than)
            ).rowcount
            for start in range(0, len(surplus), PRUNE_CHUNK):
                chunk = surplus[start : start + PRUNE_CHUNK]
                deleted += conn.execute(delete(offer_attempts).where(a.id.in_(chunk))).rowcount
        return int(deleted)


def _row(r: Any) -> AttemptRow:
    return AttemptRow(
        target=r.target, attempt=r.attempt, run_id=r.run_id,
        started_at=as_utc_or_none(r.started_at), finished_at=as_utc(r.finished_at),
        outcome=r.outcome, stage=r.stage,
        error_kind=r.error_kind, reason=r.reason, http_status=r.http_status,
        record_id=r.record_id, mapping_version=r.mapping_version,
        next_attempt_at=as_utc_or_none(r.next_attempt_at),
    )  # fmt: skip
