"""A ledger with a source run in progress, as the offer lanes see it (shared by store tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine, migrate
from worker.store.ledger import Claim, Ledger, OfferState
from worker.store.sources import RunTicket, SourceRuns
from worker.store.workers import Workers

TIMEOUT = 30.0


@dataclass
class Rig:
    engine: Engine
    ledger: Ledger
    runs: SourceRuns
    workers: Workers

    def start(self, source: str, offers: Sequence[str], owner: str = "w1") -> RunTicket:
        """A run of ``source`` led by ``owner``, whose listing named ``offers``."""
        self.runs.ensure([source])
        self.workers.beat(owner)
        (ticket,) = self.runs.take_due(owner, [source], lease_seconds=600, limit=1, now_due=True)
        listed = datetime.now(UTC)
        self.ledger.enqueue(source, [(offer_id, None) for offer_id in offers], listed)
        assert self.runs.record_listing(ticket, owner, listed)
        return ticket

    def claim(
        self, owner: str = "w1", *, limit: int = 10, budget: int = 10, lease: float = 600,
        budgets: dict[str, int] | None = None,
    ) -> list[OfferState]:  # fmt: skip
        self.workers.beat(owner)
        return self.ledger.claim_due(
            Claim(
                owner=owner,
                lease_seconds=lease,
                budgets=budgets or {},
                default_budget=budget,
                limit=limit,
                worker_timeout=TIMEOUT,
            )
        )


def rig_for(url: str) -> Rig:
    engine = create_store_engine(DatabaseSettings(url=url))
    migrate(engine)
    migrate(engine)  # idempotent
    return Rig(engine, Ledger(engine), SourceRuns(engine, worker_timeout=TIMEOUT), Workers(engine))
