"""Reading the ledger a page at a time, for the console: offers filtered by source, state, stage,
target and parked, searched by offer id; the mapping version each target was sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, and_, func, or_, select

from worker.store.ledger import OfferState, _offer, _targets_of
from worker.store.tables import offer_steps, offer_targets, offers

# Offers counted for a list at most: past it the list says "2,000 or more", so that a filter
# matching much of a large ledger costs a bounded count, not a full one.
COUNT_CAP = 2_000
UNFINISHED = ("pending", "posting", "posted", "failed")  # a parked offer is one of these


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
    total: int  # at most COUNT_CAP (then: that many or more)
    page: int
    size: int

    @property
    def more(self) -> bool:
        """The count stopped at COUNT_CAP."""
        return self.total >= COUNT_CAP

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size), self.page + (1 if self.more else 0))


class Browse:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def offers(
        self, wanted: OfferFilter, *, page: int = 1, size: int = 50, sources: Sequence[str] = ()
    ) -> OfferPage:
        """One page of offers, newest first (by source, then offer id, both descending: the
        primary key's order, read backwards). ``sources``: every source there is, which lets
        an offer id search use the primary key when no source is chosen."""
        o = offers.c
        counted = select(func.count()).select_from(
            _filtered(select(o.offer_id), wanted, sources).limit(COUNT_CAP).subquery()
        )
        page = max(1, page)
        order = (o.source.desc(), o.offer_id.desc())
        # The page's keys first (the offset walks the primary key only), then their rows.
        keys = (
            _filtered(select(o.source, o.offer_id), wanted, sources)
            .order_by(*order)
            .limit(size)
            .offset((page - 1) * size)
            .subquery()
        )
        ordered = (
            select(offers)
            .join(keys, and_(o.source == keys.c.source, o.offer_id == keys.c.offer_id))
            .order_by(*order)
        )
        with self._engine.connect() as conn:
            total = int(conn.execute(counted).scalar_one())
            rows = conn.execute(ordered).all()
            targets = _targets_of(conn, [(row.source, row.offer_id) for row in rows])
        found = [_offer(row, targets.get((row.source, row.offer_id), ())) for row in rows]
        return OfferPage(found, total, page, size)

    def stages(self) -> list[str]:
        """The stages unfinished offers are at, for the filter's choices (finished offers keep
        the stage they failed at before; they are not what an operator looks for)."""
        o = offers.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(o.stage).where(o.status.in_(UNFINISHED), o.stage.is_not(None)).distinct()
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


def _filtered(query: Select[Any], wanted: OfferFilter, sources: Sequence[str]) -> Select[Any]:
    o, t = offers.c, offer_targets.c
    mine = (t.source == o.source, t.offer_id == o.offer_id)
    if wanted.source:
        query = query.where(o.source == wanted.source)
    elif wanted.offer_id and sources:  # the primary key (source, offer_id) serves the search
        query = query.where(o.source.in_(list(sources)))
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
        if wanted.parked:  # through the status index: parked offers are unfinished
            query = query.where(o.status.in_(UNFINISHED), parked)
        else:
            query = query.where(~parked)
    if wanted.stage and not wanted.status:
        query = query.where(o.status.in_(UNFINISHED))
    if wanted.offer_id:
        if wanted.offer_id.endswith("*"):
            prefix = wanted.offer_id[:-1]
            # A range, not LIKE: the index serves it on SQLite and PostgreSQL alike.
            query = query.where(o.offer_id >= prefix, o.offer_id < prefix + "\U0010ffff")
        else:
            query = query.where(o.offer_id == wanted.offer_id)
    return query
