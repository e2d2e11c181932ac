"""Sources' schedules and runs, shared by every replica through the database.

Each source has a row: when its next run is due, and the run in progress with its owner (a
lease). A worker takes a due source's run in one statement (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), renews the lease while the run goes on, and hands the source back with its next
run time when the run ends. A lease whose owner stopped beating (``workers``) or that was not
renewed in time is void: another replica takes the run over. The offers of a run are worked on
by every replica (``Ledger.claim_due``); the owner only lists the queue and ends the run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select, update

from worker.store.db import as_utc, upsert_into
from worker.store.due import free, untried
from worker.store.tables import offers, runs, source_state
from worker.store.workers import alive_owner


@dataclass(frozen=True, slots=True)
class RunTicket:
    """A run of a source, taken by this worker."""

    source: str
    run_id: str
    due_at: datetime  # when it was scheduled (for "started late")


@dataclass(frozen=True, slots=True)
class SourceRow:
    source: str
    next_run_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    run_id: str | None
    listed_at: datetime | None
    halted: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


class SourceRuns:
    def __init__(self, engine: Engine, *, worker_timeout: float) -> None:
        self._engine = engine
        self._timeout = worker_timeout

    def ensure(self, sources: Iterable[str]) -> None:
        """A row for each source, first run due now (existing rows keep their schedule)."""
        now = _now()
        rows = [{"source": name, "next_run_at": now} for name in sources]
        if not rows:
            return
        with self._engine.begin() as conn:
            conn.execute(upsert_into(self._engine, source_state).on_conflict_do_nothing(), rows)

    def due_now(self, sources: Sequence[str]) -> list[str]:
        """Bring these sources' next run forward to now (the console's "run now"): the next
        worker tick starts it. A source whose run is in progress keeps it (it is running)."""
        now = _now()
        s = source_state.c
        with self._engine.begin() as conn:
            found = conn.execute(
                update(source_state)
                .where(s.source.in_(list(sources)), s.next_run_at > now)
                .values(next_run_at=now)
                .returning(s.source)
            ).scalars()
            return sorted(str(name) for name in found)

    def take_due(
        self, owner: str, sources: Sequence[str], *, lease_seconds: float, limit: int,
        now_due: bool = False,
    ) -> list[RunTicket]:  # fmt: skip
        """Start the runs of up to ``limit`` of ``sources`` that are due (any of them, if
        ``now_due``) and that no live worker is running."""
        now = _now()
        s = source_state.c
        free = or_(s.lease_owner.is_(None), s.lease_until < now,
                   ~alive_owner(s.lease_owner, now, self._timeout))  # fmt: skip
        query = (
            select(s.source, s.next_run_at, s.run_id)
            .where(s.source.in_(sources), free, *(() if now_due else (s.next_run_at <= now,)))
            .order_by(s.next_run_at)
            .limit(limit)
        )
        if self._engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        tickets = []
        with self._engine.begin() as conn:
            for source, due_at, previous in conn.execute(query).all():
                run_id = uuid.uuid4().hex[:16]
                conn.execute(
                    update(source_state)
                    .where(s.source == source)
                    .values(
                        lease_owner=owner,
                        lease_until=now + timedelta(seconds=lease_seconds),
                        run_id=run_id,
                        listed_at=None,
                        halted=None,
                        last_started_at=now,
                    )
                )
                if previous is not None:  # a run its worker never finished (it died)
                    conn.execute(
                        update(runs)
                        .where(runs.c.run_id == previous, runs.c.finished_at.is_(None))
                        .values(
                            finished_at=now,
                            outcome="abandoned",
                            error="its worker stopped; the run was taken over",
                        )
                    )
                conn.execute(
                    runs.insert().values(
                        run_id=run_id,
                        source=source,
                        owner=owner,
                        started_at=now,
                        listed=0,
                        succeeded=0,
                        failed=0,
                        parked=0,
                        invalid_entries=0,
                    )
                )
                tickets.append(RunTicket(str(source), run_id, as_utc(due_at)))
        return tickets

    def renew(self, ticket: RunTicket, owner: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the run is no longer this worker's."""
        until = _now() + timedelta(seconds=lease_seconds)
        return self._owned_update(ticket, owner, lease_until=until)

    def record_listing(self, ticket: RunTicket, owner: str, listed_at: datetime) -> bool:
        """The run's latest listing: from now on only offers it named are worked on."""
        return self._owned_update(ticket, owner, listed_at=listed_at)

    def halt(self, ticket: RunTicket, reason: str) -> bool:
        """Stop the run's offers from being taken; True for the first worker to say so."""
        s = source_state.c
        with self._engine.begin() as conn:
            result = conn.execute(
                update(source_state)
                .where(s.source == ticket.source, s.run_id == ticket.run_id, s.halted.is_(None))
                .values(halted=reason)
            )
        return result.rowcount == 1

    def halted(self, ticket: RunTicket) -> str | None:
        s = source_state.c
        with self._engine.connect() as conn:
            reason = conn.execute(
                select(s.halted).where(s.source == ticket.source, s.run_id == ticket.run_id)
            ).scalar()
        return None if reason is None else str(reason)

    def finish(self, ticket: RunTicket, owner: str, next_run_at: datetime) -> bool:
        """Hand the source back, its next run due at ``next_run_at``."""
        return self._owned_update(ticket, owner, lease_owner=None, lease_until=None,
                                  next_run_at=next_run_at, last_finished_at=_now())  # fmt: skip

    def hand_back(self, tickets: Sequence[RunTicket], owner: str) -> None:
        """Give back runs taken but never begun (the worker was told to stop while the database
        answered): each source is due again at once, for whichever worker comes next, and its
        run is recorded as stopped before it began."""
        now = _now()
        s = source_state.c
        with self._engine.begin() as conn:
            for ticket in tickets:
                conn.execute(
                    update(source_state)
                    .where(s.source == ticket.source, s.run_id == ticket.run_id,
                           s.lease_owner == owner)
                    .values(lease_owner=None, lease_until=None, next_run_at=now)
                )  # fmt: skip
                conn.execute(
                    update(runs)
                    .where(runs.c.run_id == ticket.run_id, runs.c.finished_at.is_(None))
                    .values(finished_at=now, outcome="stopped",
                            error="the worker stopped before the run began")
                )  # fmt: skip

    def _owned_update(self, ticket: RunTicket, owner: str, **values: object) -> bool:
        s = source_state.c
        with self._engine.begin() as conn:
            result = conn.execute(
                update(source_state)
                .where(s.source == ticket.source, s.run_id == ticket.run_id, s.lease_owner == owner)
                .values(**values)
            )
        return result.rowcount == 1

    def progress(self, ticket: RunTicket, listed_at: datetime) -> tuple[int, int, str | None]:
        """(offers of the run's listing not yet tried in it and due, offers in flight, why the
        run halted if it did), in one round trip."""
        now = _now()
        o = offers.c
        alive_after = now - timedelta(seconds=self._timeout)
        due = and_(o.listed_at >= listed_at, free(now, alive_after),
                   untried(ticket.run_id, alive_after))  # fmt: skip
        in_flight = and_(o.last_run_id == ticket.run_id, o.lease_owner.is_not(None),
                         alive_owner(o.lease_owner, now, self._timeout))  # fmt: skip
        s = source_state.c
        with self._engine.connect() as conn:
            waiting, flying, halted = conn.execute(
                select(
                    select(func.count()).where(o.source == ticket.source, due).scalar_subquery(),
                    select(func.count())
                    .where(o.source == ticket.source, in_flight)
                    .scalar_subquery(),
                    select(s.halted)
                    .where(s.source == ticket.source, s.run_id == ticket.run_id)
                    .scalar_subquery(),
                )
            ).one()
        return int(waiting), int(flying), None if halted is None else str(halted)

    def rows(self, sources: Sequence[str] | None = None) -> list[SourceRow]:
        query = select(source_state).order_by(source_state.c.source)
        if sources is not None:
            query = query.where(source_state.c.source.in_(sources))
        with self._engine.connect() as conn:
            return [SourceRow(**row._mapping) for row in conn.execute(query).all()]
