"""Which offers a worker may claim now, and the claim itself.

Due: an offer of a source whose run is in progress, named by that run's listing, not yet
tried in the run, open (``OPEN_OFFER``), not backing off and not leased by a live worker.
Taken the oldest of each source first, round-robin across sources within each budget.

A claim is made every few offers, so its cost is paid per offer. Ranking every offer of the
table with a window function cost 4.7 ms per claim at 1,000 queued offers and 19 ms at 10,000:
per offer, more than the ledger's writes. Instead each source in a run is read on its own, in
age order, through ``ix_offers_open``, an index over the offers that could still be due: the
scan stops after the source's budget, having skipped only offers in flight or backing off,
never the finished ones. The claim's UPDATE goes by primary key, source by source (SQLite
scanned the table for a row-value IN). The statements are built once and run with bound
parameters: building them cost more CPU than running them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Executable,
    Integer,
    Row,
    Select,
    Update,
    and_,
    bindparam,
    exists,
    or_,
    select,
    union_all,
    update,
)

from worker.store.tables import OPEN_OFFER, offer_targets, offers, source_state
from worker.store.workers import alive_since

_o, _s = offers.c, source_state.c
# Sources read per statement: SQLite refuses a compound SELECT of more than 500 terms, and
# PostgreSQL a statement of more than 65,535 parameters (four per source).
PER_STATEMENT = 200
_WHEN = DateTime(timezone=True)


def free(now: Any, alive_after: Any) -> ColumnElement[bool]:
    """Open, not backing off, and not held by a live worker (one that beat after
    ``alive_after``): this one's own included, as an offer this worker holds is in flight
    here (a run that began while it was, after a takeover, would otherwise have it processed
    twice at once). ``now``, ``alive_after``: values or bound parameters."""
    held_by_the_dead = ~alive_since(_o.lease_owner, alive_after)
    return and_(
        OPEN_OFFER,
        or_(_o.next_attempt_at.is_(None), _o.next_attempt_at <= now),
        or_(_o.lease_owner.is_(None), _o.lease_until < now, held_by_the_dead),
    )


def untried(run_id: Any, alive_after: Any) -> ColumnElement[bool]:
    """True where an offer was not tried in the run ``run_id`` (a column, a value or a bound
    parameter), a worker being alive if it beat after ``alive_after``.

    Each offer is tried at most once per run, but an attempt whose worker died before it
    finished (the offer is still leased to a worker that stopped beating) was not a try: the
    run takes that offer again at once rather than leaving it to the next run, a period later.
    Not when every target had accepted it, though: the dead worker may have been marking it,
    and only the next run's listing says whether PageUp took that mark (marking again from
    this run's listing would mark it twice). A claim that merely outlived its lease is not
    taken again either: its live worker may still be at it.
    """
    t = offer_targets.c
    not_all_posted = or_(
        _o.routed_at.is_(None),
        exists().where(t.source == _o.source, t.offer_id == _o.offer_id, t.status != "posted"),
    )
    died = and_(
        _o.lease_owner.is_not(None), ~alive_since(_o.lease_owner, alive_after),
        # the row's own word (Ledger.record_posted) first: a claim re-checks it under the
        # row's lock, where PostgreSQL would read offer_targets as of the statement's start
        _o.status != "posted", not_all_posted,
    )  # fmt: skip
    return or_(_o.last_run_id.is_(None), _o.last_run_id != run_id, died)


def due_offers(
    conn: Connection,
    *,
    now: datetime,
    worker_timeout: float,
    budgets: Mapping[str, int],
    default_budget: int,
    limit: int,
    sources: Sequence[str],
) -> list[tuple[str, str]]:
    """Up to ``limit`` (source, offer id) pairs: rank 1 of each source (in source order),
    then rank 2, and so on, each source within its budget (``budgets``, else
    ``default_budget``); only ``sources`` if any are named."""
    shared = {"now": now, "alive_after": now - timedelta(seconds=worker_timeout)}
    wanted = set(sources)
    runs = []  # (source, run id, listed at, budget) of each source to read
    for source, run_id, listed_at in conn.execute(_sources_in_run(), shared):
        budget = min(budgets.get(source, default_budget), limit)
        if budget > 0 and (not wanted or source in wanted):
            runs.append((source, run_id, listed_at, budget))
    by_source: dict[str, list[str]] = {}
    for first in range(0, len(runs), PER_STATEMENT):
        chunk = runs[first : first + PER_STATEMENT]
        params: dict[str, Any] = dict(shared)
        for n, (source, run_id, listed_at, budget) in enumerate(chunk):
            params.update({f"source_{n}": source, f"run_{n}": run_id,
                           f"listed_{n}": listed_at, f"budget_{n}": budget})  # fmt: skip
        for source, offer_id in conn.execute(_oldest_due(len(chunk)), params):
            by_source.setdefault(str(source), []).append(str(offer_id))  # in age order
    picked: list[tuple[str, str]] = []
    rank = 0
    while len(picked) < limit:
        row = [(source, ids[rank]) for source, ids in sorted(by_source.items()) if rank < len(ids)]
        if not row:
            break
        picked.extend(row[: limit - len(picked)])
        rank += 1
    return picked


def claim(
    conn: Connection,
    picked: Sequence[tuple[str, str]],
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    worker_timeout: float,
) -> list[Row[Any]]:
    """Lease the picked offers to ``owner``, each only if it is still free and untried in
    its source's run (checked again under the row's lock: an offer whose last target's
    acceptance committed since it was picked is not taken, its worker is marking it). Counts
    an attempt and stamps the run. The offers' rows, in the order picked."""
    by_source: dict[str, list[str]] = {}
    for source, offer_id in picked:
        by_source.setdefault(source, []).append(offer_id)
    alive_after = now - timedelta(seconds=worker_timeout)
    claimed: list[Row[Any]] = []
    for source, ids in by_source.items():
        claimed.extend(conn.execute(_claim(), {
            "k_source": source, "k_ids": ids, "v_owner": owner, "now": now,
            "v_lease_until": lease_until, "alive_after": alive_after,
        }).all())  # fmt: skip
    order = {key: index for index, key in enumerate(picked)}  # RETURNING keeps none
    claimed.sort(key=lambda row: order[(row.source, row.offer_id)])
    return claimed


@functools.cache
def _sources_in_run() -> Select[Any]:
    """(source, run id, listed at) of each source whose run is in progress and has listed
    its queue. A run whose leader died is left alone until another worker takes it over and
    lists the queue again: its old listing still names offers the dead worker was marking,
    which PageUp may already have taken out of the queue."""
    return select(_s.source, _s.run_id, _s.listed_at).where(
        _s.run_id.is_not(None), _s.listed_at.is_not(None), _s.halted.is_(None),
        _s.lease_until > bindparam("now", type_=_WHEN),
        alive_since(_s.lease_owner, bindparam("alive_after", type_=_WHEN)),
    )  # fmt: skip


@functools.cache
def _oldest_due(members: int) -> Executable:
    """Each of ``members`` sources' due offers in its run, oldest first, at most its budget:
    parameters ``source_<n>``, ``run_<n>``, ``listed_<n>``, ``budget_<n>``, ``now`` and
    ``alive_after``."""
    now, alive_after = bindparam("now", type_=_WHEN), bindparam("alive_after", type_=_WHEN)
    selects = []
    for n in range(members):
        inner = (
            select(_o.source, _o.offer_id)
            .where(
                _o.source == bindparam(f"source_{n}"),
                _o.listed_at >= bindparam(f"listed_{n}", type_=_WHEN),
                free(now, alive_after),
                untried(bindparam(f"run_{n}"), alive_after),
            )
            .order_by(_o.first_seen_at, _o.offer_id)
            .limit(bindparam(f"budget_{n}", type_=Integer))
            .subquery()
        )
        selects.append(select(inner.c.source, inner.c.offer_id))
    return selects[0] if members == 1 else union_all(*selects)


@functools.cache
def _claim() -> Update:
    now, alive_after = bindparam("now", type_=_WHEN), bindparam("alive_after", type_=_WHEN)
    run_of_source = select(_s.run_id).where(_s.source == _o.source).scalar_subquery()
    return (
        update(offers)
        .where(
            _o.source == bindparam("k_source"),
            _o.offer_id.in_(bindparam("k_ids", expanding=True)),
            free(now, alive_after),
            untried(run_of_source, alive_after),
        )
        .values(
            attempts=_o.attempts + 1,
            last_run_id=run_of_source,
            updated_at=now,
            lease_owner=bindparam("v_owner"),
            lease_until=bindparam("v_lease_until", type_=_WHEN),
            claimed_at=now,
            fetched_at=None,
            mapped_at=None,
        )
        .returning(*offers.c)
    )
