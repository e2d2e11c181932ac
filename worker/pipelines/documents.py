"""Sending an offer's documents to one target, after its record exists (the map's ``documents:``).

For each document the map chose, in turn:
 1. a document the ledger says is ``done`` is never sent again;
 2. one tried before (its upload's outcome may be unknown: a crash, a timeout) is first looked
    up in the employee's files where the map says how (``find``: same file name and checksum,
    or size where the target lists no checksum); found, it is recorded done and not resent;
 3. otherwise it is recorded ``posting`` (on a first try while its download opens: durable
    before the upload's first byte, which is all exactly-once needs; a retry records it with
    the checksum and size once the document is in), downloaded (``worker.sources.downloads``:
    limits checked, SHA-256 computed), uploaded with its own idempotency key
    (``<offer key>:document:<PUReferenceID>``), and recorded ``done`` with its checksum and
    size.

A required document that fails keeps the target from "posted" (the offer is retried or parked
like any other target failure); an optional one is recorded failed, logged, alerted and
counted, and the offer goes on to be marked: ``hirebridge retry --documents`` sends it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from worker import alerts, metrics
from worker.errors import DeliveryError, DocumentRefused, MappingError
from worker.mapping.uploads import (
    ChosenDocument,
    UploadPlan,
    already_there,
    choose_documents,
    document_context,
    find_path,
    listed_files,
    upload_plan,
)
from worker.pipelines.parts import TargetParts
from worker.pipelines.policy import failure_facts
from worker.redact import Redactor, scrub_text
from worker.sinks.http import Delivered
from worker.sinks.uploads import upload_json, upload_multipart
from worker.sources.downloads import Downloader, Incoming, Wanted
from worker.sources.incoming import DownloadBroke
from worker.sources.pageup import PageUpClient
from worker.store.documents import (
    DONE,
    DocumentFailure,
    DocumentLedger,
    DocumentRef,
    DocumentState,
)
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one target's documents this time."""

    sent: int
    already: int  # done before, or found in the target's files
    failed_optional: list[str]  # PageUp ids


def preflight(target: TargetParts, document: Any, downloader: Downloader | None) -> None:
    """Before anything is sent: every required document is there, and what PageUp says of it
    (type, extension, size) passes the limits. Its bytes are checked as they arrive."""
    if target.field_map.documents is None:
        return
    if downloader is None:
        raise MappingError([f"target {target.name}: its map sends documents, and this worker "
                            "has no document downloader"])  # fmt: skip
    for chosen in choose_documents(target.field_map, document):
        wanted = Wanted(chosen.document_id, chosen.mime, chosen.extension, chosen.declared_bytes)
        problem = downloader.refusal(wanted)
        if problem is not None and chosen.choice.required:
            raise DocumentRefused(problem, system="pageup", stage="document",
                                  record_ids=(chosen.document_id,))  # fmt: skip


class DocumentDelivery:
    """Delivers the documents of one source's offers; one per offer attempt."""

    def __init__(
        self,
        ledger: DocumentLedger,
        store: StoreThread,
        source: str,
        downloader: Downloader,
        pageup: PageUpClient,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._source = source
        self._downloader = downloader
        self._pageup = pageup

    async def send_all(
        self,
        target: TargetParts,
        offer_id: str,
        document: Any,
        *,
        record_id: str | None,
        step_ids: Mapping[str, str | None],
        base_key: str,
        only: set[str] | None = None,
    ) -> Outcome:
        """Send every chosen document (or only the PageUp ids in ``only``) not yet in; raise
        the first required document's failure after trying all of them."""
        field_map = target.field_map
        chosen = choose_documents(field_map, document)
        rows = {r.document_id: r for r in await self._store.call(
            self._ledger.of, self._source, offer_id, target.name)}  # fmt: skip
        sent = already = 0
        failed: list[str] = []
        first_required: Exception | None = None
        for doc in chosen:
            row = rows.get(doc.document_id)
            if (only is not None and doc.document_id not in only) or (row and row.status == DONE):
                already += row is not None and row.status == DONE
                continue
            context = document_context(document, record_id=record_id, step_ids=step_ids,
                                       entry=doc.entry)  # fmt: skip
            key = f"{base_key}:document:{doc.document_id}"
            try:
                found = await self._one(target, offer_id, doc, context, row, key)
            except Exception as exc:  # HirebridgeError, or a bug: recorded, never lost
                await self._failed(target, offer_id, doc, key, exc)
                if doc.choice.required:
                    first_required = first_required or exc
                else:
                    failed.append(doc.document_id)
                continue
            sent += not found
            already += found
        if first_required is not None:
            raise first_required
        return Outcome(sent, already, failed)

    async def _one(
        self, target: TargetParts, offer_id: str, doc: ChosenDocument, context: Any,
        row: DocumentState | None, key: str,
    ) -> bool:  # fmt: skip
        """Send one document; True if it was found already there instead.

        First try: the upload streams the document while it arrives (once its first bytes
        passed the type check), when the storage announced its length. Tried before (the
        outcome may be unknown): it is looked up in the target's files first, by the checksum
        the ledger holds, else once it is downloaded whole, and sent from the file if not found.
        """
        plan = upload_plan(target.field_map, doc, context)
        ref = self._ref(target, offer_id, doc, key)
        if row is not None and row.sha256 is not None and row.size_bytes is not None:
            found = await self._look_up(target, context, plan, row.size_bytes, row.sha256)
            if found is not None:
                await self._found(target, ref, doc, found, row.sha256, row.size_bytes)
                return True
        started = time.perf_counter()
        tried = row is not None
        # First try: "posting" is recorded while the link is asked and the download opens, so
        # that its commit (a fsync) overlaps them instead of delaying the upload. Exactly once
        # needs it durable before the upload's first byte, and no more: the upload awaits it.
        # A download that fails before then leaves a "posting" row that no byte followed,
        # which the next try treats as any tried document (downloaded whole, looked up first).
        posting = None if tried else self._store.call(self._ledger.posting, ref, sha256=None,
                                                      size=None)  # fmt: skip
        done: asyncio.Future[None] | None = None
        try:
            wanted = Wanted(doc.document_id, doc.mime, doc.extension, doc.declared_bytes)
            async with self._downloader.stream(self._pageup, wanted, whole=tried) as incoming:
                if tried and (row is None or row.sha256 is None):
                    whole = await incoming.finish()
                    found = await self._look_up(target, context, plan, whole.size, whole.sha256)
                    if found is not None:
                        await self._found(target, ref, doc, found, whole.sha256, whole.size)
                        return True
                await self._ready(ref, incoming, posting)
                try:
                    delivered = await self._upload(target, doc, plan, incoming, key)
                except DownloadBroke as broke:
                    raise broke.error from None
                downloaded = await incoming.finish()
                # The download is let go of (its thread, its response, the temporary file's
                # pages) while "done" commits; the move ends once both did.
                sha256, size = downloaded.sha256, downloaded.size
                done = self._store.call(self._ledger.done, ref, sha256=sha256, size=size,
                                        record_id=delivered.record_id)  # fmt: skip
        finally:
            if posting is not None:  # committed before any "failed" record; an error it
                with contextlib.suppress(Exception):  # raised was raised by _ready already
                    await posting
            if done is not None:
                await done
        metrics.DOCUMENTS.labels(target.name, "sent").inc()
        metrics.DOCUMENT_BYTES.labels(target.name).inc(downloaded.size)
        metrics.DOCUMENT_SECONDS.labels(target.name).observe(time.perf_counter() - started)
        log.info("document_sent", target=target.name, document_id=doc.document_id,
                 choice=doc.choice.name, size=downloaded.size, sha256=downloaded.sha256,
                 hris_file_id=delivered.record_id, streamed=not tried)  # fmt: skip
        return False

    async def _ready(
        self, ref: DocumentRef, incoming: Incoming, posting: asyncio.Future[None] | None
    ) -> None:
        """Once this returns, the upload may send its first byte: "posting" is durable."""
        if posting is None:  # tried before: recorded once it is all in, checksum and all
            whole = await incoming.finish()
            await self._store.call(self._ledger.posting, ref, sha256=whole.sha256,
                                   size=whole.size)  # fmt: skip
            return
        if incoming.announced is None and not incoming.complete:
            await incoming.finish()  # no length to give the target: all in before it goes
        await posting

    async def _found(
        self, target: TargetParts, ref: DocumentRef, doc: ChosenDocument, found: str,
        sha256: str, size: int,
    ) -> None:  # fmt: skip
        await self._store.call(self._ledger.done, ref, sha256=sha256, size=size,
                               record_id=found)  # fmt: skip
        metrics.DOCUMENTS.labels(target.name, "already_there").inc()
        log.info("document_already_there", target=target.name, document_id=doc.document_id,
                 hris_file_id=found)  # fmt: skip

    async def _look_up(
        self, target: TargetParts, context: Any, plan: UploadPlan, size: int, sha256: str
    ) -> str | None:
        """The target's id of a file already there with this name and content ("" when it
        lists none), or None."""
        path = find_path(target.field_map, context)
        spec = target.field_map.documents
        if path is None or spec is None or spec.find is None:
            return None
        sink = target.sink
        body = await sink.get_json(sink.url_for(path), route=sink.route_for(spec.find.path.text),
                                   stage="documents:find")  # fmt: skip
        found = already_there(target.field_map, listed_files(target.field_map, body),
                              plan.file_name, size, sha256)  # fmt: skip
        return None if found is None else (found.file_id or "")

    async def _upload(
        self, target: TargetParts, doc: ChosenDocument, plan: UploadPlan, incoming: Incoming,
        key: str,
    ) -> Delivered:  # fmt: skip
        spec = target.field_map.documents
        assert spec is not None  # chosen documents come from the section
        size = incoming.length
        assert size is not None  # announced by the storage, or the document is in
        sink = target.sink
        route, stage = sink.route_for(spec.path.text), "documents:upload"
        url = sink.url_for(plan.path)
        if spec.encoding == "multipart":
            return await upload_multipart(
                sink, url, route=route, method=spec.method, key=key, stage=stage,
                file_field=spec.file_field, file_name=plan.file_name, mime=doc.mime,
                content=incoming.content, size=size, fields=plan.fields,
                record_id=spec.record_id,
            )  # fmt: skip
        return await upload_json(
            sink, url, route=route, method=spec.method, key=key, stage=stage,
            content_at=spec.content_target, fields=plan.fields, content=incoming.content,
            size=size, record_id=spec.record_id,
        )  # fmt: skip

    def _ref(
        self, target: TargetParts, offer_id: str, doc: ChosenDocument, key: str
    ) -> DocumentRef:
        return DocumentRef(self._source, offer_id, target.name, doc.document_id,
                           doc.choice.name, doc.choice.required, key)  # fmt: skip

    async def _failed(
        self, target: TargetParts, offer_id: str, doc: ChosenDocument, key: str, exc: Exception
    ) -> None:
        facts = failure_facts(exc, "documents", Redactor(()))
        failure = DocumentFailure(facts.kind, facts.message, facts.status)
        await self._store.write(self._ledger.failed, self._ref(target, offer_id, doc, key),
                               failure)  # fmt: skip
        outcome = "refused" if facts.kind == "document_refused" else "failed"
        metrics.DOCUMENTS.labels(target.name, outcome).inc()
        if doc.choice.required:
            return  # the target's failure is reported (and alerted) by the offer pipeline
        remote = exc if isinstance(exc, DeliveryError) else None
        log.error("document_failed", target=target.name, document_id=doc.document_id,
                  choice=doc.choice.name, required=False, stage=facts.stage,
                  error_kind=facts.kind, error=facts.message,
                  system=remote.system if remote else None, http_status=facts.status)  # fmt: skip
        alerts.document_failed(
            source=self._source, offer_id=offer_id, target=target.name,
            document_id=doc.document_id, stage=facts.stage, kind=facts.kind,
            message=scrub_text(facts.message), system=facts.system, status=facts.status,
        )  # fmt: skip
