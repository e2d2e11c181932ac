"""One offer, from the PageUp queue to every target its routes chose, then marked processed.

For a claimed offer:
 1. fetch its source document (offer, new-starter form, application form), each checked to be
    about the offer asked for;
 2. choose its targets (``worker.routing``), once: the choice is recorded, so a route or map
    change mid-flight cannot send half an offer one way and half the other;
 3. map it for each target that still needs it, and record each target about to be sent;
 4. send it to those targets, each on its own (``worker.pipelines.delivery``): a target that
    fails retries alone later, and one that accepted is never sent it again;
 5. once every chosen target has accepted it, mark it processed in PageUp.

Each step is recorded before the next one starts, so a crash anywhere resumes correctly (the
last, that the mark was taken, is made while the lane goes on: ``pipelines.trailing``). A
failure of the offer (fetch, route, mark) or of a target parks it or schedules its next try; a
failure that would hit every offer halts the source's run (PageUp refusing us, its daily rate
limit) or rests the target (refused credentials, an outage), and the others go on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import structlog

from worker import alerts, metrics
from worker.errors import DeliveryError, DocumentRefused, MappingError, RateLimitedError
from worker.mapping.engine import MappedRecord, apply_map
from worker.mapping.payloads import payload_hash
from worker.notices.book import NoticeBook
from worker.pipelines.delivery import TargetDelivery, idempotency_key
from worker.pipelines.documents import DocumentDelivery, preflight
from worker.pipelines.parts import SourceParts, TargetParts
from worker.pipelines.policy import after_failure, credentials_refused, failure_facts
from worker.pipelines.trailing import Trailing
from worker.redact import Redactor, scrub_text
from worker.routing import choose_targets, no_route_reason
from worker.settings import SyncSettings
from worker.sources.downloads import Downloader
from worker.sources.offer_document import fetch_document
from worker.sources.pageup import OfferRef
from worker.store.documents import DocumentLedger
from worker.store.ledger import Failure, LeaseLost, Ledger, OfferState, Sending, TargetState
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)


class Outcome(Enum):
    PROCESSED = "processed"
    FAILED = "failed"  # to be tried again
    PARKED = "parked"
    DEFERRED = "deferred"  # given back untried, or partly: nothing failed


@dataclass
class Attempt:
    """What happened to the targets in this attempt."""

    posted: set[str]
    failures: dict[str, tuple[Exception, Callable[[str], str], str]]  # (error, redact, stage)
    resting: dict[str, float]  # target -> seconds its breaker still rests
    document: Any = None  # the source document: a notice names the hire's position from it


class OfferProcessor:
    """Takes claimed offers of any source as far as they can go."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        store: StoreThread,
        owner: str,
        sources: Mapping[str, SourceParts],
        targets: Mapping[str, TargetParts],
        settings: SyncSettings,
        halt_source: Callable[[str, str, str, DeliveryError], None],
        notices: NoticeBook,
        keep_documents_days: int | None = None,
        downloader: Downloader | None = None,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._owner = owner
        self.sources = sources  # swapped as a whole on reload
        self.targets = targets
        self._settings = settings
        self._halt_source = halt_source  # (source, run_id, reason, error)
        self._notices = notices  # parked offers tell HR users (sent by the notifier)
        self._keep_days = keep_documents_days
        self._downloader = downloader  # offer documents (maps with a documents section)
        self._documents = DocumentLedger(ledger.engine)
        self._rng = random.Random()
        self.halted: set[str] = set()  # runs (ids) halted: their offers are given back
        # False once this worker's heartbeat is too old: the others may take it for dead
        # and its offers for free, so it starts no send and no mark (Worker.may_act).
        self._may_act = may_act
        self.trailing = Trailing()  # the records of offers marked processed, being written

    async def process(self, offer: OfferState) -> Outcome:
        """Take one claimed offer as far as it can go; the ledger says where it stopped."""
        source = self.sources.get(offer.source)
        context = {"source": offer.source, "offer_id": offer.offer_id, "stage": "fetch"}
        with alerts.record_scope(), structlog.contextvars.bound_contextvars(**context):
            try:
                if source is None or offer.last_run_id in self.halted:
                    await self._release(offer, None)
                    return Outcome.DEFERRED
                return await self._advance(offer, source)
            except LeaseLost:
                log.warning("offer_lease_lost")
                return Outcome.DEFERRED

    async def _advance(self, offer: OfferState, source: SourceParts) -> Outcome:
        chosen = [t.target for t in offer.targets]
        if offer.routed_at is not None and chosen and all(t.delivered for t in offer.targets):
            log.info("offer_already_posted", targets=chosen)
            return await self._mark(offer, source)
        waiting_on = [t.target for t in offer.targets if not t.delivered]
        if offer.routed_at is None:
            waiting_on = list(source.routes.targets)
        if (rest := self._resting_for(waiting_on)) is not None:
            # Every target it waits for rests: do not even fetch it; try after the rest.
            await self._release(offer, datetime.now(UTC) + timedelta(seconds=rest))
            return Outcome.DEFERRED
        stage, document, fetched_at = "fetch", None, None
        try:
            ref = OfferRef(offer.offer_id, offer.application_id)
            document = await fetch_document(source.pageup, ref, source.checks)
            fetched_at = datetime.now(UTC)  # recorded with the next write: no commit of its own
            source.breaker.succeeded()
            if self._keep_days is not None:
                await self._store.write(self._ledger.keep_document, offer.source,
                                       offer.offer_id, json.dumps(document))  # fmt: skip
            stage = "route"
            structlog.contextvars.bind_contextvars(stage=stage)
            route = None
            if offer.routed_at is None:
                decision = choose_targets(source.routes, document)
                if not decision.targets:
                    raise MappingError([no_route_reason(source.routes, decision)])
                route = chosen = list(decision.targets)
                log.info("offer_routed", targets=chosen)
        except Exception as exc:  # HirebridgeError, or a bug: keep the state honest
            return await self._offer_failed(offer, source, stage, exc, scrub_text,
                                            document=document, fetched_at=fetched_at)  # fmt: skip
        return await self._deliver(offer, source, document, chosen, route, fetched_at)

    async def _deliver(
        self,
        offer: OfferState,
        source: SourceParts,
        document: Any,
        chosen: list[str],
        route: list[str] | None,
        fetched_at: datetime | None,
    ) -> Outcome:
        structlog.contextvars.bind_contextvars(stage="map")
        states = {t.target: t for t in offer.targets}
        now = datetime.now(UTC)
        attempt = Attempt(posted={t for t in chosen if _delivered(states.get(t))}, failures={},
                          resting={}, document=document)  # fmt: skip
        plans: dict[str, MappedRecord] = {}
        for name in chosen:
            if name in attempt.posted or not _due(states.get(name), now):
                continue
            target = self.targets.get(name)
            if target is None:
                error = MappingError([f"target {name!r} is no longer configured: add it back, "
                                      "or `hirebridge retry --reroute` the offer"])  # fmt: skip
                attempt.failures[name] = (error, scrub_text, "map")
            elif (rest := target.breaker.resting_for()) > 0:
                attempt.resting[name] = rest
            else:
                try:
                    plans[name] = apply_map(target.field_map, document)
                    preflight(target, document, self._downloader)
                except (MappingError, DocumentRefused) as exc:
                    plans.pop(name, None)
                    attempt.failures[name] = (exc, scrub_text, "map")
        sending = [
            Sending(name, _key_for(offer, states.get(name), name),
                    payload_hash(plan.payload), self.targets[name].field_map.version)
            for name, plan in plans.items()
        ]  # fmt: skip
        mapped_at = datetime.now(UTC) if plans else None
        await self._store.write(self._ledger.begin_delivery, offer.source, offer.offer_id,
                               owner=self._owner, route=route, sending=sending,
                               fetched_at=fetched_at, mapped_at=mapped_at)  # fmt: skip
        structlog.contextvars.bind_contextvars(stage="post")
        documents = None
        if self._downloader is not None:
            documents = DocumentDelivery(self._documents, self._store, offer.source,
                                         self._downloader, source.pageup)  # fmt: skip
        delivery = TargetDelivery(self._ledger, self._store, offer.source, documents,
                                  owner=self._owner)  # fmt: skip
        if await self._fenced_out(offer):
            return Outcome.DEFERRED
        await asyncio.gather(*(
            self._send(offer, delivery, self.targets[s.target], document, plans[s.target],
                       s.idempotency_key, attempt)
            for s in sending
        ))  # fmt: skip
        if attempt.posted >= set(chosen):
            return await self._mark(offer, source, document)
        return await self._unfinished(offer, chosen, states, attempt)

    async def _send(
        self,
        offer: OfferState,
        delivery: TargetDelivery,
        target: TargetParts,
        document: Any,
        plan: MappedRecord,
        key: str,
        attempt: Attempt,
    ) -> None:
        with structlog.contextvars.bound_contextvars(target=target.name):
            try:
                record_id = await delivery.send(target, offer.offer_id, document, plan, key)
            except Exception as exc:  # HirebridgeError, or a bug
                attempt.failures[target.name] = (exc, Redactor(plan.sensitive_values), "post")
                self._maybe_rest(target, exc)
                return
            if target.breaker.reason is not None:
                metrics.TARGET_RESTING.labels(target.name).set(0)
            target.breaker.succeeded()
            await self._store.write(self._ledger.record_posted, offer.source, offer.offer_id,
                                   target.name, owner=self._owner, record_id=record_id)  # fmt: skip
            attempt.posted.add(target.name)
            metrics.DELIVERIES.labels(target.name, "posted").inc()

    async def _mark(self, offer: OfferState, source: SourceParts, document: Any = None) -> Outcome:
        structlog.contextvars.bind_contextvars(stage="mark_processed")
        if await self._fenced_out(offer):
            return Outcome.DEFERRED
        try:
            await source.pageup.mark_processed(offer.offer_id)
        except Exception as exc:  # HirebridgeError, or a bug
            return await self._offer_failed(offer, source, "mark_processed", exc, scrub_text,
                                            all_posted=True, document=document)  # fmt: skip
        # Not waited for: the lane takes its next offer meanwhile (see trailing.py).
        record = functools.partial(self._store.write, self._ledger.record_processed,
                                   offer.source, offer.offer_id, owner=self._owner)  # fmt: skip
        self.trailing.add(offer.source, record)
        metrics.OFFERS.labels(offer.source, "processed").inc()
        log.info("offer_processed")
        return Outcome.PROCESSED

    async def _unfinished(
        self,
        offer: OfferState,
        chosen: list[str],
        states: Mapping[str, TargetState],
        attempt: Attempt,
    ) -> Outcome:
        """Some target did not accept the offer this time: record each failure, and when the
        offer as a whole may be tried again (the soonest of its targets), or that it waits
        for an admin (every target left is parked)."""
        now = datetime.now(UTC)
        failures: dict[str, Failure] = {}
        for name, (exc, redact, stage) in attempt.failures.items():
            tries = (states[name].attempts if name in states else 0) + 1
            failures[name] = self._decide(exc, stage, tries, redact, now)
            if stage == "map" and name in self.targets:  # the map it failed with
                version = self.targets[name].field_map.version
                failures[name] = dataclasses.replace(failures[name], mapping_version=version)
            self._report_target(offer, name, failures[name], exc, attempt.document)
        waits: list[datetime | None] = []
        for name in set(chosen) - attempt.posted:
            if name in failures:
                failure = failures[name]
                waits.append(None if failure.park else failure.next_attempt_at)
            elif name in attempt.resting:
                waits.append(now + timedelta(seconds=attempt.resting[name]))
            else:
                state = states.get(name)
                waits.append(None if state is not None and state.parked_at else
                             (state.next_attempt_at if state else None) or now)  # fmt: skip
        pending = [wait for wait in waits if wait is not None]
        if not failures:
            await self._release(offer, min(pending) if pending else None)
            return Outcome.DEFERRED
        first = next(iter(failures.values()))
        summary = "; ".join(
            f.message if len(chosen) == 1 else f"{name}: {f.message}"
            for name, f in failures.items()
        )
        parked = not pending
        whole = Failure(first.stage, first.kind, summary, first.http_status, park=parked,
                        next_attempt_at=None if parked else min(pending))  # fmt: skip
        await self._store.write(self._ledger.record_failed, offer.source, offer.offer_id,
                               owner=self._owner, offer=whole, targets=failures)  # fmt: skip
        metrics.OFFERS.labels(offer.source, "parked" if parked else "failed").inc()
        # Each target's failure was logged and alerted above; this says where the offer stands.
        log.warning("offer_parked" if parked else "offer_failed", stage=whole.stage,
                    error=summary, next_attempt_at=whole.next_attempt_at,
                    targets_waiting=sorted(failures))  # fmt: skip
        return Outcome.PARKED if parked else Outcome.FAILED

    async def _offer_failed(
        self,
        offer: OfferState,
        source: SourceParts,
        stage: str,
        exc: Exception,
        redact: Callable[[str], str],
        *,
        all_posted: bool = False,
        document: Any = None,
        fetched_at: datetime | None = None,
    ) -> Outcome:
        """The offer as a whole failed (fetch, route, mark)."""
        failure = self._decide(exc, stage, offer.attempts, redact, datetime.now(UTC))
        await self._store.write(self._ledger.record_failed, offer.source, offer.offer_id,
                               owner=self._owner, offer=failure, all_posted=all_posted,
                               fetched_at=fetched_at)  # fmt: skip
        metrics.OFFERS.labels(offer.source, "parked" if failure.park else "failed").inc()
        metrics.OFFER_FAILURES.labels(failure.stage, failure.kind).inc()
        remote = exc if isinstance(exc, DeliveryError) else None
        alerts.offer_failed(
            source=offer.source, offer_id=offer.offer_id, target=None, stage=failure.stage,
            kind=failure.kind, message=failure.message, system=remote.system if remote else None,
            status=failure.http_status, parked=failure.park,
        )  # fmt: skip
        self._notices.offer_parked(offer.source, offer.offer_id, None, failure, exc, document)
        log.error("offer_parked" if failure.park else "offer_failed", stage=failure.stage,
                  error_kind=failure.kind, error=failure.message, attempts=offer.attempts,
                  next_attempt_at=failure.next_attempt_at, **_remote(exc))  # fmt: skip
        if remote is not None and remote.system == "pageup":
            self._maybe_halt(offer, source, remote)
        return Outcome.PARKED if failure.park else Outcome.FAILED

    def _decide(
        self, exc: Exception, stage: str, tries: int, redact: Callable[[str], str], now: datetime
    ) -> Failure:
        facts = failure_facts(exc, stage, redact)
        decision = after_failure(exc, attempts=tries, settings=self._settings, now=now,
                                 rng=self._rng)  # fmt: skip
        return Failure(facts.stage, facts.kind, facts.message, facts.status, decision.park,
                       decision.next_attempt_at)  # fmt: skip

    def _report_target(
        self, offer: OfferState, target: str, failure: Failure, exc: Exception, document: Any
    ) -> None:
        outcome = "parked" if failure.park else "failed"
        metrics.DELIVERIES.labels(target, outcome).inc()
        metrics.OFFER_FAILURES.labels(failure.stage, failure.kind).inc()
        remote = exc if isinstance(exc, DeliveryError) else None
        alerts.offer_failed(
            source=offer.source, offer_id=offer.offer_id, target=target, stage=failure.stage,
            kind=failure.kind, message=failure.message, system=remote.system if remote else None,
            status=failure.http_status, parked=failure.park,
        )  # fmt: skip
        self._notices.offer_parked(offer.source, offer.offer_id, target, failure, exc, document)
        log.error(f"target_{outcome}", target=target, stage=failure.stage,
                  error_kind=failure.kind, error=failure.message,
                  next_attempt_at=failure.next_attempt_at, **_remote(exc))  # fmt: skip

    def _maybe_halt(self, offer: OfferState, source: SourceParts, exc: DeliveryError) -> None:
        """PageUp failing in a way every offer of the source would: halt the source's run."""
        reason = None
        if credentials_refused(exc) and exc.stage == "token":
            # API calls already refreshed the token once; only the token endpoint's refusal
            # condemns every offer.
            reason = f"pageup refused the credentials: {exc}"
        elif isinstance(exc, RateLimitedError):
            reason = f"pageup rate limit reached: {exc}"
        elif source.breaker.failed(exc):
            limit = self._settings.circuit_breaker_failures
            reason = f"pageup looks down: {limit} offers in a row failed: {exc}"
        if reason is not None and offer.last_run_id is not None:
            self.halted.add(offer.last_run_id)
            self._halt_source(offer.source, offer.last_run_id, scrub_text(reason), exc)

    def _resting_for(self, names: list[str]) -> float | None:
        """Seconds until the first of ``names`` may be tried, if every one of them rests."""
        rests = [t.breaker.resting_for() if (t := self.targets.get(n)) else 0.0 for n in names]
        return min(rests) if rests and min(rests) > 0 else None

    def all_resting(self, names: tuple[str, ...]) -> str | None:
        """Why none of ``names`` can be sent anything now (each rests), or None."""
        if self._resting_for(list(names)) is None:
            return None
        return "; ".join(self.targets[name].breaker.reason or name for name in names)

    def _maybe_rest(self, target: TargetParts, exc: Exception) -> None:
        """A target refusing our credentials or looking down rests; the others go on."""
        if not isinstance(exc, DeliveryError) or target.breaker.resting_for() > 0:
            return
        if exc.system != target.name:
            return  # PageUp or its document storage failed, not the target
        if credentials_refused(exc):
            target.breaker.open(f"{target.name} refused the credentials: {exc}")
        elif target.breaker.failed(exc):
            limit = self._settings.circuit_breaker_failures
            target.breaker.reason = (
                f"{target.name} looks down: {limit} offers in a row failed: {exc}"
            )
        else:
            return
        metrics.TARGET_RESTING.labels(target.name).set(1)
        reason = scrub_text(target.breaker.reason or "")
        log.error("target_resting", target=target.name, reason=reason,
                  seconds=self._settings.circuit_breaker_cooldown_seconds)  # fmt: skip
        alerts.target_resting(target=target.name, reason=reason, status=exc.status)

    async def _fenced_out(self, offer: OfferState) -> bool:
        """Whether this worker must not call a remote system for the offer now: its heartbeat
        is too old, so another worker may already have taken the offer over. It is given
        back untouched (the ledger's idempotency keys make the next try safe)."""
        if self._may_act():
            return False
        log.warning("offer_given_back_heartbeat_stale")
        await self._release(offer, None)
        return True

    async def _release(self, offer: OfferState, until: datetime | None) -> None:
        await self._store.write(self._ledger.release, offer.source, offer.offer_id,
                               owner=self._owner, until=until)  # fmt: skip

    async def release_unfinished(self) -> list[OfferState]:
        """After the work was cancelled: the offers this worker held, now free again.

        Goes through the store's thread, so it runs after any statement still in progress.
        """
        return await self._store.call(self._ledger.release_leases_of, self._owner)


def _delivered(state: TargetState | None) -> bool:
    return state is not None and state.delivered


def _due(state: TargetState | None, now: datetime) -> bool:
    """A target is tried now unless it is parked or backing off."""
    if state is None:
        return True
    if state.parked_at is not None:
        return False
    due = state.next_attempt_at
    if due is not None and due.tzinfo is None:  # SQLite drops the zone; it is UTC
        due = due.replace(tzinfo=UTC)
    return due is None or due <= now


def _key_for(offer: OfferState, state: TargetState | None, target: str) -> str:
    """The key a target was first sent the offer with, so that an unknown outcome (even one
    left by an earlier version, with its own key formula) is settled by the same key."""
    if state is not None and state.idempotency_key:
        return state.idempotency_key
    return idempotency_key(offer.source, offer.offer_id, target)


def _remote(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, DeliveryError):
        return {"system": exc.system, "http_status": exc.status}
    return {}
