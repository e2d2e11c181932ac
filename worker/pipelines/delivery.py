"""Sending one offer to one target: its request, or its steps in order, each recorded.

``plan`` (the whole map applied with placeholder ids) has already shown that every step can be
filled, so a missing answer sends nothing at all. For a multi-step map each accepted step is
recorded with its own idempotency key, and a retry resumes at the first step the target has not
accepted. The target's record id (the first step's) comes back to the offer pipeline, which
records the target as posted.

A map with a ``documents:`` section sends the offer's documents after its steps
(``worker.pipelines.documents``); its request is then recorded like a step even in a one-step
map, so that a retry after a document failed never sends the record itself again.
"""

from __future__ import annotations

from typing import Any

import structlog

from worker.mapping.engine import MappedRecord, map_step, step_applies, step_context
from worker.pipelines.documents import DocumentDelivery
from worker.pipelines.parts import TargetParts
from worker.pipelines.targets import send_step
from worker.store.ledger import Ledger
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)


def idempotency_key(source: str, offer_id: str, target: str) -> str:
    """Stable per source, offer and target: every retry of a post carries the same key."""
    return f"hirebridge:{source}:offer:{offer_id}:{target}"


class TargetDelivery:
    """Delivers offers of one source to targets, recording steps in the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        store: StoreThread,
        source: str,
        documents: DocumentDelivery | None = None,
        owner: str | None = None,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._source = source
        self._documents = documents
        self._owner = owner  # the worker holding the offers: each step's record is fenced

    async def send(
        self, target: TargetParts, offer_id: str, document: Any, plan: MappedRecord, key: str
    ) -> str | None:
        """Deliver ``plan`` to ``target``; the record id it gave (None if it gives none)."""
        field_map = target.field_map
        if not field_map.multi_step and field_map.documents is None:
            step = field_map.steps[0]
            delivered = await send_step(target.sink, field_map, step, document, plan.payload, key)
            log.info("target_posted", target=target.name, hris_id=delivered.record_id,
                     status=delivered.status)  # fmt: skip
            return delivered.record_id
        first, ids = await self._send_steps(target, offer_id, document, key)
        if field_map.documents is not None:
            if self._documents is None:
                raise RuntimeError("a map with documents needs a DocumentDelivery")
            outcome = await self._documents.send_all(
                target, offer_id, document, record_id=first, step_ids=ids, base_key=key
            )
            failed = len(outcome.failed_optional)
            log.info("documents_done", target=target.name, sent=outcome.sent,
                     already=outcome.already, failed_optional=failed)  # fmt: skip
        log.info("target_posted", target=target.name, hris_id=first, steps=len(ids))
        return first

    async def _send_steps(
        self, target: TargetParts, offer_id: str, document: Any, base_key: str
    ) -> tuple[str | None, dict[str, str | None]]:
        """Each step not yet done, in order; the first step's record id and every step's."""
        field_map = target.field_map
        ledger, source, name = self._ledger, self._source, target.name
        ids: dict[str, str | None] = await self._store.call(
            ledger.steps_done, source, offer_id, name
        )
        for step in field_map.steps:
            if step.name in ids:
                log.info("step_already_done", target=name, step=step.name, hris_id=ids[step.name])
                continue
            context = step_context(document, ids)
            if not step_applies(field_map, step, context):
                continue
            payload = map_step(field_map, step, context).payload
            # A one-step map keeps the offer's own key: a record sent before documents existed
            # in the map is settled by the key it was first sent with.
            key = f"{base_key}:{step.name}" if field_map.multi_step else base_key
            await self._store.write(ledger.record_step, source, offer_id, name, step.name,
                                   status="posting", idempotency_key=key,
                                   owner=self._owner)  # fmt: skip
            delivered = await send_step(target.sink, field_map, step, context, payload, key)
            await self._store.write(ledger.record_step, source, offer_id, name, step.name,
                                   status="done", idempotency_key=key,
                                   record_id=delivered.record_id, owner=self._owner)  # fmt: skip
            ids[step.name] = delivered.record_id
            log.info("step_posted", target=name, step=step.name, hris_id=delivered.record_id)
        return ids.get(field_map.steps[0].name), ids
