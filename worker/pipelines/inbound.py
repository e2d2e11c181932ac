"""Delivering stored pushes: inbox → (POP Engine score) → field map → target API.

Each item is claimed (a lease, so replicas never deliver one item twice at once), mapped and
sent with an idempotency key derived from its dedup key, then recorded. Failures follow the
offer policy: permanent ones and items out of attempts park with one alert; others back off.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from worker import alerts, metrics
from worker.errors import PermanentError
from worker.inbound.pop import PopEngineClient
from worker.mapping.engine import apply_map
from worker.mapping.loader import FieldMap
from worker.notices.book import NoticeBook
from worker.pipelines.policy import after_failure, failure_facts
from worker.pipelines.targets import send_step
from worker.redact import Redactor, scrub_text
from worker.settings import SyncSettings
from worker.sinks.http import HttpSink
from worker.store.inbox import Inbox, InboxItem
from worker.store.ledger import Failure

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Target:
    sink: HttpSink
    field_map: FieldMap


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    parked: int = 0


def inbound_key(source: str, dedup_key: str) -> str:
    return f"hirebridge:inbound:{source}:{dedup_key}"


def source_document(item: InboxItem, score: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a map sees: ``lead`` (Apna) or ``notification`` + ``score`` (POP), ``received_at``."""
    payload = json.loads(item.payload or "null")
    received = item.received_at.isoformat()
    if item.source == "apna":
        return {"lead": payload, "received_at": received}
    notification = {
        **(payload.get("details") or {}),
        "application_id": payload["application_id"],
        "method": payload["method"],
    }
    return {"notification": notification, "score": score, "received_at": received}


class InboundDelivery:
    def __init__(
        self,
        *,
        inbox: Inbox,
        targets: dict[str, Target],
        pop_engine: PopEngineClient | None,
        settings: SyncSettings,
        concurrency: int,
        parked_retention_days: int,
        notices: NoticeBook,
    ) -> None:
        self._inbox = inbox
        self._notices = notices  # parked pushes tell HR users
        self._retention_days = parked_retention_days
        self._targets = targets
        self._pop_engine = pop_engine
        self._settings = settings
        self._concurrency = concurrency
        self._owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._rng = random.Random()
        self._stopping = False

    def stop(self) -> None:
        """Claim no more items; the deliveries in flight finish and are recorded."""
        self._stopping = True

    async def release_unfinished(self) -> int:
        """After the deliveries were cancelled: free the items this worker had claimed."""
        return await asyncio.to_thread(self._inbox.release_leases_of, self._owner)

    def replace_map(self, source: str, field_map: FieldMap) -> None:
        target = self._targets[source]
        self._targets[source] = Target(target.sink, field_map)

    async def deliver_due(self) -> DeliveryReport:
        """Purge expired parked bodies, then deliver every item that is due now; returns when
        none is left."""
        await asyncio.to_thread(self._purge_expired)
        report = DeliveryReport()
        gate = asyncio.Semaphore(self._concurrency)
        started = datetime.now(UTC)
        while not self._stopping:
            items: list[InboxItem] = await asyncio.to_thread(
                self._inbox.claim_due,
                owner=self._owner,
                lease_seconds=self._settings.lease_seconds,
                limit=self._concurrency * 4,
                untouched_since=started,
            )
            items = [item for item in items if item.source in self._targets]
            if not items:
                return report

            async def one(item: InboxItem) -> None:
                async with gate:
                    outcome = await self._deliver(item)
                report.delivered += outcome == "delivered"
                report.failed += outcome != "delivered"
                report.parked += outcome == "parked"

            await asyncio.gather(*(one(item) for item in items))
        return report

    def _purge_expired(self) -> None:
        days = self._retention_days
        purged = self._inbox.purge_parked(
            parked_before=datetime.now(UTC) - timedelta(days=days),
            reason=f"retention: parked over {days} days (inbound.parked_retention_days)",
        )
        if purged:
            log.info("parked_pushes_purged", inbox_ids=purged, older_than_days=days)

    async def _deliver(self, item: InboxItem) -> str:
        target = self._targets[item.source]
        stage = "score" if item.source == "pop" else "map"
        redact = scrub_text
        with (
            alerts.record_scope(),
            structlog.contextvars.bound_contextvars(inbox_id=item.id, source=item.source),
        ):
            try:
                score = None
                if item.source == "pop":
                    score = await self._score(item)
                stage = "map"
                record = apply_map(target.field_map, source_document(item, score))
                redact = Redactor(record.sensitive_values)
                stage = "post"
                step = target.field_map.steps[0]
                key = inbound_key(item.source, item.dedup_key)
                delivered = await send_step(
                    target.sink, target.field_map, step, {}, record.payload, key
                )
                await asyncio.to_thread(self._inbox.record_delivered, item.id, delivered.record_id)
            except Exception as exc:  # HirebridgeError, or a bug: keep the state honest
                return await self._fail(item, stage, exc, redact)
        metrics.INBOUND_DELIVERIES.labels(item.source, "delivered").inc()
        log.info("push_delivered", inbox_id=item.id, source=item.source,
                 target_id=delivered.record_id, attempts=item.attempts)  # fmt: skip
        return "delivered"

    async def _score(self, item: InboxItem) -> dict[str, Any]:
        if self._pop_engine is None:
            raise PermanentError("no POP Engine API configured (inbound.pop.engine)",
                                 system="pop_engine", stage="score")  # fmt: skip
        application_id = json.loads(item.payload or "{}")["application_id"]
        score = await self._pop_engine.score(application_id)
        return {"score": score.score, "score_final": score.score_final,
                "score_text": score.score_text}  # fmt: skip

    async def _fail(self, item: InboxItem, stage: str, exc: Exception, redact: Any) -> str:
        facts = failure_facts(exc, stage, redact)
        stage, kind, message, status = facts.stage, facts.kind, facts.message, facts.status
        decision = after_failure(
            exc, attempts=item.attempts, settings=self._settings, now=datetime.now(UTC),
            rng=self._rng,
        )  # fmt: skip
        failure = Failure(stage, kind, message, status, decision.park, decision.next_attempt_at)
        await asyncio.to_thread(self._inbox.record_failure, item.id, failure)
        outcome = "parked" if decision.park else "failed"
        metrics.INBOUND_DELIVERIES.labels(item.source, outcome).inc()
        alerts.inbound_failed(
            source=item.source, item_id=item.id, stage=stage, kind=kind, message=message,
            system=facts.system, status=status,
            parked=decision.park,
        )  # fmt: skip
        self._notices.push_parked(item.source, item.id, facts, decision.park)
        event = "push_delivery_parked" if decision.park else "push_delivery_failed"
        log.error(event, inbox_id=item.id, source=item.source, stage=stage,
                  error_kind=kind, error=message, attempts=item.attempts, http_status=status,
                  next_attempt_at=decision.next_attempt_at)  # fmt: skip
        return outcome
