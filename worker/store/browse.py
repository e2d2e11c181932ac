"""Reading the ledger a page at a time, for the console: offers filtered by source, state, stage,
target and parked, searched by offer id; the mapping version each target was sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, func, or_, select

from worker.store.ledger import OfferState, _offer, _targets_of
from worker.store.tables import offer_steps, offer_targets, offers


@dataclass(frozen=True, slots=True)
class OfferFilter:
    source: str | None = None
    status: str | None = None  # the ledger's status of the offer
    stage: str | None = None
    target: str | None = None  # offers going to this target
    parked: bool | None = None
    offer_id: str | None = None  # exact id, or its beginning when it ends with *


@dataclass(frozen=True, slots=True)
class OfferPage:
    offers: Sequence[OfferState]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


class Browse:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def offers(self, wanted: OfferFilter, *, page: int = 1, size: int = 50) -> OfferPage:
        """One page of offers, newest first (by source, then offer id descending)."""
        o = offers.c
        query = _filtered(select(offers), wanted)
        counted = _filtered(select(func.count()).select_from(offers), wanted)
        page = max(1, page)
        ordered = query.order_by(o.source, o.offer_id.desc())
        with self._engine.connect() as conn:
            total = int(conn.execute(counted).scalar_one())
            rows = conn.execute(ordered.limit(size).offset((page - 1) * size)).all()
            targets = _targets_of(conn, [(row.source, row.offer_id) for row in rows])
        found = [_offer(row, targets.get((row.source, row.offer_id), ())) for row in rows]
        return OfferPage(found, total, page, size)

    def stages(self) -> list[str]:
        """The stages offers are at, for the filter's choices."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(offers.c.stage).where(offers.c.stage.is_not(None)).distinct()
            ).scalars()
            return sorted(str(stage) for stage in rows)

    def mapping_versions(self, source: str, offer_id: str) -> dict[str, str | None]:
        """Per target, the version of the field map the offer was (last) sent with."""
        t = offer_targets.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t.target, t.mapping_version).where(
                    t.source == source, t.offer_id == offer_id
                )
            ).all()
        return {str(target): version for target, version in rows}

    def steps(self, source: str, offer_id: str) -> list[dict[str, object]]:
        """The steps of multi-step maps, per target, with the record id each gave."""
        s = offer_steps.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(s.target, s.step, s.status, s.record_id, s.updated_at)
                .where(s.source == source, s.offer_id == offer_id)
                .order_by(s.target, s.updated_at)
            ).all()
        return [dict(row._mapping) for row in rows]


def _filtered(query: Select[Any], wanted: OfferFilter) -> Select[Any]:
    o, t = offers.c, offer_targets.c
    mine = (t.source == o.source, t.offer_id == o.offer_id)
    if wanted.source:
        query = query.where(o.source == wanted.source)
    if wanted.status:
        query = query.where(o.status == wanted.status)
    if wanted.stage:
        query = query.where(o.stage == wanted.stage)
    if wanted.target:
        query = query.where(select(t.offer_id).where(*mine, t.target == wanted.target).exists())
    if wanted.parked is not None:
        parked = or_(
            o.parked_at.is_not(None),
            select(t.offer_id).where(*mine, t.parked_at.is_not(None)).exists(),
        )
        query = query.where(parked if wanted.parked else ~parked)
    if wanted.offer_id:
        if wanted.offer_id.endswith("*"):
            query = query.where(o.offer_id.startswith(wanted.offer_id[:-1], autoescape=True))
        else:
            query = query.where(o.offer_id == wanted.offer_id)
    return query
