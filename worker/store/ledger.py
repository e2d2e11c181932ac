"""The offers ledger: a row per offer of a source, a row per target its routes chose, written
at every step so that a crash between any two steps resumes correctly.

    offer:   pending ──► posted (every chosen target accepted) ──► processed (marked in PageUp)
                │                                          (failed: the last try failed; skipped)
    target:  pending ──► posting ──► posted
                 └────────► failed ◄──┘   (outcome unknown: resent with the same idempotency key)

A target whose row says ``posted`` is never sent the offer again; an offer is marked processed
only once every target row says ``posted``. The offers of a source are worked on only in a
run of that source, and only if that run's own listing of the queue named them (``listed_at``):
an offer that left the queue is never taken from a stale listing.

Orthogonal to the status: ``parked_at`` (dead letter, until an admin retries it),
``next_attempt_at`` (backoff across runs) and a lease (``lease_owner``/``lease_until``), taken
by ``claim_due``, so that several replicas never work on one offer at once. A lease is void as
soon as its owner stops beating (``workers``), so a dead replica's offers move on quickly, and
every write after the claim is fenced by it: a worker that lost its lease writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    update,
)

from worker.store import attempts
from worker.store.db import as_utc, upsert_into
from worker.store.due import claim as claim_picked
from worker.store.due import due_offers
from worker.store.statements import (
    bound,
    fenced_offer_posted,
    fenced_offer_update,
    target_sending,
    target_update,
    targets_routed,
)
from worker.store.tables import offer_steps, offer_targets, offers, source_documents
from worker.store.thread import transaction

ENQUEUE_CHUNK = 500  # rows per INSERT when a listing is stored


class Status(StrEnum):
    PENDING = "pending"
    POSTING = "posting"
    POSTED = "posted"
    PROCESSED = "processed"
    FAILED = "failed"
    SKIPPED = "skipped"


class LeaseLost(Exception):
    """Another worker took the offer (this one was presumed dead): write nothing more."""


@dataclass(frozen=True, slots=True)
class TargetState:
    target: str
    status: Status
    stage: str | None
    attempts: int
    record_id: str | None
    error_kind: str | None
    last_error: str | None
    http_status: int | None
    idempotency_key: str | None
    updated_at: datetime
    posted_at: datetime | None = None
    next_attempt_at: datetime | None = None
    parked_at: datetime | None = None

    @property
    def delivered(self) -> bool:
        return self.status == Status.POSTED


@dataclass(frozen=True, slots=True)
class OfferState:
    source: str
    offer_id: str
    status: Status
    stage: str | None
    attempts: int
    error_kind: str | None
    last_error: str | None
    http_status: int | None
    updated_at: datetime
    first_seen_at: datetime | None = None
    application_id: str | None = None
    last_run_id: str | None = None
    listed_at: datetime | None = None
    routed_at: datetime | None = None
    processed_at: datetime | None = None
    next_attempt_at: datetime | None = None
    parked_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    targets: tuple[TargetState, ...] = ()

    def target(self, name: str) -> TargetState | None:
        return next((t for t in self.targets if t.target == name), None)

    @property
    def record_id(self) -> str | None:
        """The first target's record id (one-target deployments: the HRIS id)."""
        return self.targets[0].record_id if self.targets else None


@dataclass(frozen=True, slots=True)
class Failure:
    stage: str
    kind: str
    message: str
    http_status: int | None
    park: bool = False
    next_attempt_at: datetime | None = None
    mapping_version: str | None = None  # a target's: the map it failed with, if not sent


@dataclass(frozen=True, slots=True)
class Sending:
    """A target about to be sent the offer: recorded before the first byte goes out."""

    target: str
    idempotency_key: str
    payload_hash: str
    mapping_version: str


@dataclass(frozen=True, slots=True)
class Claim:
    """What a worker may take now: per source, how many offers (its budget's free lanes)."""

    owner: str
    lease_seconds: float
    budgets: Mapping[str, int]
    default_budget: int
    limit: int
    worker_timeout: float
    sources: Sequence[str] = field(default_factory=tuple)  # only these; empty: any


def _now() -> datetime:
    return datetime.now(UTC)


def _key(source: str, offer_id: str) -> tuple[ColumnElement[bool], ...]:
    return (offers.c.source == source, offers.c.offer_id == offer_id)


def _target_key(source: str, offer_id: str, target: str) -> tuple[ColumnElement[bool], ...]:
    t = offer_targets.c
    return (t.source == source, t.offer_id == offer_id, t.target == target)


class Ledger:
    """Repository functions over the offers of every source in one database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- the queue ------------------------------------------------------------------------

    def enqueue(
        self, source: str, refs: Iterable[tuple[str, str | None]], listed_at: datetime
    ) -> None:
        """Store a listing of the queue: each (offer id, application id), stamped ``listed_at``.

        New offers become pending; known ones only learn they are still in the queue.
        """
        rows = [
            {"source": source, "offer_id": offer_id, "application_id": application_id,
             "status": Status.PENDING.value, "attempts": 0, "first_seen_at": listed_at,
             "updated_at": listed_at, "listed_at": listed_at}
            for offer_id, application_id in refs
        ]  # fmt: skip
        statement = upsert_into(self._engine, offers)
        statement = statement.on_conflict_do_update(
            index_elements=[offers.c.source, offers.c.offer_id],
            set_={
                "listed_at": statement.excluded.listed_at,
                "application_id": statement.excluded.application_id,
            },
        )
        with transaction(self._engine) as conn:
            for start in range(0, len(rows), ENQUEUE_CHUNK):
                conn.execute(statement, rows[start : start + ENQUEUE_CHUNK])

    def claim_due(self, claim: Claim) -> list[OfferState]:
        """Take due offers of the sources whose run is in progress, for this worker.

        Due: named by its source's run's latest listing, not yet tried in that run, not
        parked, skipped, backing off, processed (unless processed before that listing: it came
        back) or leased by a live worker. Taken round-robin across sources (the oldest of each
        first) within each source's budget, so that no tenant starves another. Each claim
        counts an attempt and stamps the run.
        """
        now = _now()
        with transaction(self._engine) as conn:
            picked = due_offers(
                conn, now=now, worker_timeout=claim.worker_timeout, budgets=claim.budgets,
                default_budget=claim.default_budget, limit=claim.limit, sources=claim.sources,
            )  # fmt: skip
            if not picked:
                return []
            claimed = claim_picked(
                conn, picked, owner=claim.owner, now=now, worker_timeout=claim.worker_timeout,
                lease_until=now + timedelta(seconds=claim.lease_seconds),
            )  # fmt: skip
            keys = [(row.source, row.offer_id) for row in claimed]
            targets = _targets_of(conn, keys)
        return [_offer(row, targets.get((row.source, row.offer_id), ())) for row in claimed]

    # -- one offer's progress (fenced by the lease) ---------------------------------------

    def begin_delivery(
        self,
        source: str,
        offer_id: str,
        *,
        owner: str,
        route: Sequence[str] | None,
        sending: Sequence[Sending],
        fetched_at: datetime | None = None,
        mapped_at: datetime | None = None,
    ) -> None:
        """Before any target is sent anything: record the route (when decided now) and each
        target about to be sent, with its idempotency key. From here on an outcome may be
        unknown after a crash; the key settles it. ``fetched_at``, ``mapped_at``: when this
        attempt fetched the source document and applied the maps (the offer's timeline)."""
        now = _now()
        steps = {"fetched_at": fetched_at, "mapped_at": mapped_at}
        with transaction(self._engine) as conn:
            self._fence(conn, source, offer_id, owner, {"stage": "post", "updated_at": now,
                        **({"routed_at": now} if route is not None else {}),
                        **{k: v for k, v in steps.items() if v is not None}})  # fmt: skip
            sent = {send.target for send in sending}
            if route is not None:
                rows = [{"source": source, "offer_id": offer_id, "target": target,
                         "status": Status.PENDING.value, "attempts": 0, "updated_at": now}
                        for target in route if target not in sent]  # fmt: skip
                if rows:
                    conn.execute(targets_routed(self._engine.dialect.name), rows)
            if sending:
                conn.execute(target_sending(self._engine.dialect.name), [
                    {"k_source": source, "k_offer_id": offer_id, "k_target": send.target,
                     "v_idempotency_key": send.idempotency_key,
                     "v_payload_hash": send.payload_hash,
                     "v_mapping_version": send.mapping_version, "v_updated_at": now}
                    for send in sending
                ])  # fmt: skip

    def record_posted(
        self, source: str, offer_id: str, target: str, *, owner: str, record_id: str | None
    ) -> None:
        """Written as soon as a target accepted: it must never be sent this offer again."""
        now = _now()
        with transaction(self._engine) as conn:
            # The offer's row first (its lease, and "posted" if this was the last target):
            # then no other worker's claim can take it again meanwhile (due.untried).
            fenced = conn.execute(fenced_offer_posted(), {
                "k_source": source, "k_offer_id": offer_id, "k_owner": owner,
                "k_target": target, "v_updated_at": now})  # fmt: skip
            if fenced.rowcount != 1:
                raise LeaseLost(f"offer {offer_id} of {source} is no longer claimed by this worker")
            values = {"status": Status.POSTED.value, "stage": None, "record_id": record_id,
                      "posted_at": now, "error_kind": None, "last_error": None,
                      "http_status": None, "next_attempt_at": None, "parked_at": None,
                      "updated_at": now}  # fmt: skip
            conn.execute(target_update(tuple(values)), {
                "k_source": source, "k_offer_id": offer_id, "k_target": target,
                **bound("v_", values)})  # fmt: skip
            attempts.record(conn, source, offer_id, target=target, outcome="posted", now=now,
                            record_id=record_id)  # fmt: skip

    def record_processed(self, source: str, offer_id: str, *, owner: str) -> None:
        now = _now()
        with transaction(self._engine) as conn:
            self._fence(conn, source, offer_id, owner, {
                "status": Status.PROCESSED.value, "stage": None, "processed_at": now,
                "error_kind": None, "last_error": None, "http_status": None,
                "next_attempt_at": None, "lease_owner": None, "lease_until": None,
                "updated_at": now,
            })  # fmt: skip
            attempts.record(conn, source, offer_id, target=None, outcome="processed",
                            now=now, stage="mark_processed")  # fmt: skip

    def record_failed(
        self,
        source: str,
        offer_id: str,
        *,
        owner: str,
        offer: Failure,
        targets: Mapping[str, Failure] | None = None,
        all_posted: bool = False,
        fetched_at: datetime | None = None,
    ) -> None:
        """Keep the reasons, park or schedule the next attempt, release the offer.

        ``offer`` says what the offer as a whole waits for (the soonest next try of its
        targets, or parked); ``targets`` the failure of each target that failed. A posted
        target stays posted, and an offer whose targets all accepted stays ``posted``. Each
        target's failure, or else the offer's, is added to its attempts.
        """
        now = _now()
        with transaction(self._engine) as conn:
            for target, failure in (targets or {}).items():
                failed = conn.execute(
                    update(offer_targets)
                    .where(*_target_key(source, offer_id, target),
                           offer_targets.c.status != Status.POSTED.value)
                    .values(
                        status=Status.FAILED.value, stage=failure.stage, updated_at=now,
                        error_kind=failure.kind, last_error=failure.message,
                        http_status=failure.http_status,
                        parked_at=now if failure.park else None,
                        next_attempt_at=None if failure.park else failure.next_attempt_at,
                    )
                )  # fmt: skip
                if failed.rowcount:  # a target that accepted the offer keeps it: no failure
                    attempts.record_failure(conn, source, offer_id, target, failure, now)
            self._fence(conn, source, offer_id, owner, {
                "status": (Status.POSTED if all_posted else Status.FAILED).value,
                "stage": offer.stage, "error_kind": offer.kind, "last_error": offer.message,
                "http_status": offer.http_status, "parked_at": now if offer.park else None,
                "next_attempt_at": None if offer.park else offer.next_attempt_at,
                "lease_owner": None, "lease_until": None, "updated_at": now,
                **({"fetched_at": fetched_at} if fetched_at is not None else {}),
            })  # fmt: skip
            if not targets:
                attempts.record_failure(conn, source, offer_id, None, offer, now)

    def release(self, source: str, offer_id: str, *, owner: str, until: datetime | None) -> None:
        """Give the offer back untried (a halted source, an open circuit, a stop)."""
        self._set(source, offer_id, owner, next_attempt_at=until, lease_owner=None,
                  lease_until=None)  # fmt: skip

    def _set(self, source: str, offer_id: str, owner: str, **values: object) -> None:
        with transaction(self._engine) as conn:
            self._fence(conn, source, offer_id, owner, {"updated_at": _now(), **values})

    def _fence(
        self, conn: Connection, source: str, offer_id: str, owner: str, values: dict[str, Any]
    ) -> None:
        statement = fenced_offer_update(tuple(values))
        keys = {"k_source": source, "k_offer_id": offer_id, "k_owner": owner}
        result = conn.execute(statement, {**keys, **bound("v_", values)})
        if result.rowcount != 1:
            raise LeaseLost(f"offer {offer_id} of {source} is no longer claimed by this worker")

    def release_leases_of(self, owner: str) -> list[OfferState]:
        """Free the unprocessed offers ``owner`` holds (its work was cancelled); returns
        them as they were left."""
        held = and_(offers.c.lease_owner == owner, offers.c.status != Status.PROCESSED.value)
        with transaction(self._engine) as conn:
            rows = conn.execute(
                select(offers).where(held).order_by(offers.c.source, offers.c.offer_id)
            ).all()
            targets = _targets_of(conn, [(row.source, row.offer_id) for row in rows])
            conn.execute(update(offers).where(held).values(lease_owner=None, lease_until=None))
        return [_offer(row, targets.get((row.source, row.offer_id), ())) for row in rows]

    # -- multi-step targets ---------------------------------------------------------------

    def steps_done(self, source: str, offer_id: str, target: str) -> dict[str, str | None]:
        """The steps of a multi-step map that ``target`` accepted, with their record ids."""
        s = offer_steps.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(s.step, s.record_id).where(
                    s.source == source,
                    s.offer_id == offer_id,
                    s.target == target,
                    s.status == "done",
                )
            ).all()
        return {str(step): record_id for step, record_id in rows}

    def record_step(
        self,
        source: str,
        offer_id: str,
        target: str,
        step: str,
        *,
        status: str,
        idempotency_key: str,
        record_id: str | None = None,
        owner: str | None = None,
    ) -> None:
        """``posting`` before a step's request, ``done`` as soon as the target accepted it.

        With ``owner``, only while that worker holds the offer (else LeaseLost, and nothing
        written): a worker taken for dead stops before its next step."""
        now = _now()
        values = {"status": status, "record_id": record_id, "updated_at": now,
                  "idempotency_key": idempotency_key}  # fmt: skip
        statement = upsert_into(self._engine, offer_steps).values(
            source=source, offer_id=offer_id, target=target, step=step, **values
        )
        s = offer_steps.c
        with transaction(self._engine) as conn:
            if owner is not None:
                self._fence(conn, source, offer_id, owner, {"updated_at": now})
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[s.source, s.offer_id, s.target, s.step], set_=values
                )
            )

    # -- reading --------------------------------------------------------------------------

    def get(self, source: str, offer_id: str) -> OfferState | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(offers).where(*_key(source, offer_id))).first()
            if row is None:
                return None
            targets = _targets_of(conn, [(source, offer_id)])
        return _offer(row, targets.get((source, offer_id), ()))

    def find(self, offer_id: str, source: str | None = None) -> list[OfferState]:
        """An offer id in every source (or one): ids are per tenant, so several may match."""
        query = select(offers).where(offers.c.offer_id == offer_id).order_by(offers.c.source)
        if source is not None:
            query = query.where(offers.c.source == source)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            targets = _targets_of(conn, [(row.source, row.offer_id) for row in rows])
        return [_offer(row, targets.get((row.source, row.offer_id), ())) for row in rows]

    def counts(self, source: str | None = None, target: str | None = None) -> dict[str, int]:
        """Offers by state, as an operator reads it: ``posting`` while a target's answer is
        awaited (or unknown after a crash), ``posted`` once every chosen target accepted and
        only the mark is left, then ``processed``; ``failed`` (the last try failed, parked
        or not), ``pending`` (seen, not yet delivered), ``skipped``."""
        o, t = offers.c, offer_targets.c
        mine = (t.source == o.source, t.offer_id == o.offer_id)
        posting = select(t.target).where(*mine, t.status == Status.POSTING.value).exists()
        unposted = select(t.target).where(*mine, t.status != Status.POSTED.value).exists()
        final = o.status.in_([Status.PROCESSED.value, Status.SKIPPED.value])
        state = case(
            (final, o.status),
            (posting, Status.POSTING.value),
            (and_(o.routed_at.is_not(None), ~unposted), Status.POSTED.value),
            else_=o.status,
        )
        query = select(state, func.count()).group_by(state)
        if source is not None:
            query = query.where(o.source == source)
        if target is not None:
            query = query.where(select(t.target).where(*mine, t.target == target).exists())
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return {str(status): int(count) for status, count in rows}

    def target_counts(
        self, source: str | None = None, target: str | None = None
    ) -> dict[tuple[str, str], int]:
        """(target, status) → how many offers; parked ones count under "parked"."""
        t = offer_targets.c
        parked = t.parked_at.is_not(None)
        query = select(t.target, t.status, parked, func.count()).group_by(t.target, t.status,
                                                                           parked)  # fmt: skip
        if source is not None:
            query = query.where(t.source == source)
        if target is not None:
            query = query.where(t.target == target)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        counts: dict[tuple[str, str], int] = {}
        for name, status, is_parked, count in rows:
            key = (str(name), "parked" if is_parked else str(status))
            counts[key] = counts.get(key, 0) + int(count)
        return counts

    def unfinished(
        self,
        limit: int = 100,
        *,
        source: str | None = None,
        target: str | None = None,
        parked_only: bool = False,
    ) -> Sequence[OfferState]:
        """Offers not processed nor skipped, oldest change first, with their targets."""
        o = offers.c
        query = select(offers).where(
            o.status.not_in([Status.PROCESSED.value, Status.SKIPPED.value])
        )
        if source is not None:
            query = query.where(o.source == source)
        t = offer_targets.c
        mine = [t.source == o.source, t.offer_id == o.offer_id]
        if target is not None:  # offers going to this target (waiting on it, if parked_only)
            waiting = [t.parked_at.is_not(None)] if parked_only else []
            query = query.where(select(t.offer_id).where(*mine, t.target == target,
                                                         *waiting).exists())  # fmt: skip
        elif parked_only:  # parked as a whole, or waiting on a parked target
            parked_target = select(t.offer_id).where(*mine, t.parked_at.is_not(None)).exists()
            query = query.where(or_(o.parked_at.is_not(None), parked_target))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(o.updated_at).limit(limit)).all()
            targets = _targets_of(conn, [(row.source, row.offer_id) for row in rows])
        return [_offer(row, targets.get((row.source, row.offer_id), ())) for row in rows]

    def oldest_waiting_since(self) -> dict[str, datetime]:
        """Per source: when its oldest offer seen but not processed (nor skipped) was seen."""
        o = offers.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(o.source, func.min(o.first_seen_at))
                .where(o.status.not_in([Status.PROCESSED.value, Status.SKIPPED.value]))
                .group_by(o.source)
            ).all()
        return {str(source): as_utc(oldest) for source, oldest in rows if oldest is not None}

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self._engine.connect() as conn:
            conn.execute(select(1))

    # -- kept source documents ------------------------------------------------------------

    def keep_document(self, source: str, offer_id: str, document: str) -> None:
        """Store (or replace) an offer's source document; see purge_documents."""
        values = {"document": document, "stored_at": _now()}
        statement = upsert_into(self._engine, source_documents).values(
            source=source, offer_id=offer_id, **values
        )
        d = source_documents.c
        with transaction(self._engine) as conn:
            conn.execute(
                statement.on_conflict_do_update(index_elements=[d.source, d.offer_id], set_=values)
            )

    def purge_documents(self, older_than: datetime) -> int:
        with transaction(self._engine) as conn:
            result = conn.execute(
                delete(source_documents).where(source_documents.c.stored_at < older_than)
            )
        return int(result.rowcount)


def _targets_of(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[TargetState, ...]]:
    """The targets of these offers, per source: ``source = ? AND offer_id IN (...)`` is served
    by the primary key, where SQLite scanned the whole table for a row-value IN."""
    t = offer_targets.c
    by_source: dict[str, list[str]] = {}
    for source, offer_id in keys:
        by_source.setdefault(source, []).append(offer_id)
    found: dict[tuple[str, str], list[TargetState]] = {}
    for source, ids in by_source.items():
        for start in range(0, len(ids), ENQUEUE_CHUNK):
            rows = conn.execute(
                select(offer_targets)
                .where(t.source == source, t.offer_id.in_(ids[start : start + ENQUEUE_CHUNK]))
                .order_by(t.offer_id, t.target)
            ).all()
            for row in rows:
                found.setdefault((row.source, row.offer_id), []).append(_target(row))
    return {key: tuple(states) for key, states in found.items()}


def _target(row: Any) -> TargetState:
    m = row._mapping
    return TargetState(
        target=m["target"], status=Status(m["status"]), stage=m["stage"],
        attempts=m["attempts"], record_id=m["record_id"], error_kind=m["error_kind"],
        last_error=m["last_error"], http_status=m["http_status"],
        idempotency_key=m["idempotency_key"], updated_at=m["updated_at"],
        posted_at=m["posted_at"], next_attempt_at=m["next_attempt_at"],
        parked_at=m["parked_at"],
    )  # fmt: skip


def _offer(row: Any, targets: tuple[TargetState, ...]) -> OfferState:
    m = row._mapping
    return OfferState(
        source=m["source"], offer_id=m["offer_id"], status=Status(m["status"]),
        stage=m["stage"], attempts=m["attempts"], error_kind=m["error_kind"],
        last_error=m["last_error"], http_status=m["http_status"], updated_at=m["updated_at"],
        first_seen_at=m["first_seen_at"], application_id=m["application_id"],
        last_run_id=m["last_run_id"], listed_at=m["listed_at"], routed_at=m["routed_at"],
        processed_at=m["processed_at"], next_attempt_at=m["next_attempt_at"],
        parked_at=m["parked_at"], lease_owner=m["lease_owner"], lease_until=m["lease_until"],
        targets=targets,
    )  # fmt: skip
