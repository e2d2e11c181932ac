"""The history of source runs: what each listed, processed, failed and parked, and why it
stopped early if it did. A run's figures are counted from the offers it stamped, since the
offers of one run may have been processed by several replicas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, case, func, select, update

from worker.store.tables import offers, runs


@dataclass(frozen=True, slots=True)
class RunFigures:
    succeeded: int = 0
    failed: int = 0
    parked: int = 0
    failed_offers: tuple[str, ...] = ()  # the first hundred, for the run's report


class Runs:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def figures(self, source: str, run_id: str) -> RunFigures:
        """Processed, failed and parked among the offers this run tried."""
        o = offers.c
        processed = o.status == "processed"
        failed = (o.error_kind.is_not(None)) & ~processed
        with self._engine.connect() as conn:
            row = conn.execute(
                select(
                    func.count(case((processed, 1))),
                    func.count(case((failed, 1))),
                    func.count(case((failed & o.parked_at.is_not(None), 1))),
                ).where(o.source == source, o.last_run_id == run_id)
            ).one()
            failed_ids = conn.execute(
                select(o.offer_id)
                .where(o.source == source, o.last_run_id == run_id, failed)
                .order_by(o.offer_id)
                .limit(100)
            ).scalars()
            return RunFigures(int(row[0]), int(row[1]), int(row[2]), tuple(failed_ids))

    def finish(
        self,
        run_id: str,
        *,
        outcome: str,
        listed: int,
        figures: RunFigures,
        invalid_where: Sequence[str],
        error: str | None,
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    finished_at=datetime.now(UTC),
                    outcome=outcome,
                    listed=listed,
                    succeeded=figures.succeeded,
                    failed=figures.failed,
                    parked=figures.parked,
                    invalid_entries=len(invalid_where),
                    invalid_where="; ".join(invalid_where[:20]) or None,
                    error=error,
                )
            )

    def last(self, limit: int = 5, *, source: str | None = None) -> Sequence[dict[str, object]]:
        query = select(runs).order_by(runs.c.started_at.desc()).limit(limit)
        if source is not None:
            query = query.where(runs.c.source == source)
        with self._engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query).all()]
