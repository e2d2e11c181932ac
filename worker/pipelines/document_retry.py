"""``hirebridge retry --documents``: send the documents of processed offers that did not get in
(optional ones whose failure did not hold the offer back), now, from the command.

A processed offer has left PageUp's queue, so no run will take it again: the command does the
work itself. It claims each offer (the lease a worker would take), fetches its source document
again (``GET /offers/{id}`` still answers for a processed offer: ASSUMED), and sends only the
documents the ledger says are not in, with the same keys and the same look-up in the
employee's files as the first attempt. Each is recorded (and audited) as the pipeline does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine, or_, update

from worker.alerts import record_scope
from worker.errors import HirebridgeError
from worker.pipelines.delivery import idempotency_key
from worker.pipelines.documents import DocumentDelivery
from worker.pipelines.parts import SourceParts, TargetParts
from worker.settings import Settings
from worker.sources.downloads import Downloader
from worker.sources.offer_document import fetch_document
from worker.sources.pageup import OfferRef
from worker.store.documents import DocumentLedger, DocumentState
from worker.store.ledger import Ledger, Status
from worker.store.tables import offers
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)
CLAIM_SECONDS = 600


@dataclass(frozen=True, slots=True)
class Retried:
    """What became of one offer's documents for one target."""

    source: str
    offer_id: str
    target: str
    sent: list[str]
    failed: list[str]
    problem: str | None = None  # why nothing could be tried


async def retry_documents(
    settings: Settings,
    engine: Engine,
    rows: Sequence[DocumentState],
    *,
    sources: dict[str, SourceParts],
    targets: dict[str, TargetParts],
    downloader: Downloader,
    owner: str,
) -> list[Retried]:
    """Send the documents ``rows`` name (grouped per offer and target)."""
    groups: dict[tuple[str, str, str], set[str]] = {}
    for row in rows:
        groups.setdefault((row.source, row.offer_id, row.target), set()).add(row.document_id)
    store, ledger, documents = StoreThread(engine), Ledger(engine), DocumentLedger(engine)
    results = []
    try:
        for (source, offer_id, target), wanted in groups.items():
            with (
                record_scope(),
                structlog.contextvars.bound_contextvars(
                    source=source, offer_id=offer_id, target=target, stage="retry_documents"
                ),
            ):
                results.append(await _one(
                    settings, store, ledger, documents, sources, targets, downloader, owner,
                    (source, offer_id, target), wanted,
                ))  # fmt: skip
    finally:
        store.close()
    return results


async def _one(
    settings: Settings, store: StoreThread, ledger: Ledger, documents: DocumentLedger,
    sources: dict[str, SourceParts], targets: dict[str, TargetParts], downloader: Downloader,
    owner: str, key: tuple[str, str, str], wanted: set[str],
) -> Retried:  # fmt: skip
    source_name, offer_id, target_name = key
    source, target = sources.get(source_name), targets.get(target_name)
    if source is None or target is None or target.field_map.documents is None:
        return Retried(*key, [], sorted(wanted), "its source, target or documents section is "
                       "no longer configured")  # fmt: skip
    if not await store.call(claim, ledger.engine, source_name, offer_id, owner):
        return Retried(*key, [], sorted(wanted), "another worker or command holds the offer")
    try:
        state = await store.call(ledger.get, source_name, offer_id)
        target_state = state.target(target_name) if state is not None else None
        if state is None or target_state is None:
            return Retried(*key, [], sorted(wanted), "unknown offer or target")
        try:
            document = await fetch_document(source.pageup, OfferRef(offer_id, state.application_id),
                                            source.checks)  # fmt: skip
            steps = await store.call(ledger.steps_done, source_name, offer_id, target_name)
            base = target_state.idempotency_key or idempotency_key(source_name, offer_id,
                                                                   target_name)  # fmt: skip
            delivery = DocumentDelivery(documents, store, source_name, downloader, source.pageup)
            outcome = await delivery.send_all(
                target, offer_id, document, record_id=target_state.record_id, step_ids=steps,
                base_key=base, only=wanted,
            )  # fmt: skip
        except HirebridgeError as exc:
            return Retried(*key, [], sorted(wanted), str(exc))
        failed = sorted(set(outcome.failed_optional) & wanted)
        log.info("documents_retried", sent=len(wanted) - len(failed), failed=len(failed))
        return Retried(*key, sorted(wanted - set(failed)), failed)
    finally:
        await store.call(release, ledger.engine, source_name, offer_id, owner)


def claim(engine: Engine, source: str, offer_id: str, owner: str) -> bool:
    """Take a processed offer's lease, unless a live claim holds it."""
    now = datetime.now(UTC)
    o = offers.c
    with engine.begin() as conn:
        taken = conn.execute(
            update(offers)
            .where(o.source == source, o.offer_id == offer_id,
                   o.status == Status.PROCESSED.value,
                   or_(o.lease_owner.is_(None), o.lease_until < now))
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=CLAIM_SECONDS))
        )  # fmt: skip
    return bool(taken.rowcount)


def release(engine: Engine, source: str, offer_id: str, owner: str) -> None:
    o = offers.c
    with engine.begin() as conn:
        conn.execute(
            update(offers)
            .where(o.source == source, o.offer_id == offer_id, o.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )
