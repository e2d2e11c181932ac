"""The offer documents ledger (table ``offer_documents``): per offer, target and PageUp document,
its checksum, size and state. Written before an upload (``posting``: the outcome is unknown
until the answer) and as soon as the target took it (``done``), so that a crash between the two
is settled by the target's file list or the idempotency key, never by a second copy.

Never the content, the file name or the title: those may name the person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, func, select

from worker.store.db import upsert_into
from worker.store.ledger import Status
from worker.store.tables import offer_documents, offers
from worker.store.thread import transaction

POSTING, DONE, FAILED = "posting", "done", "failed"


@dataclass(frozen=True, slots=True)
class DocumentState:
    source: str
    offer_id: str
    target: str
    document_id: str
    choice: str
    required: bool
    status: str
    sha256: str | None
    size_bytes: int | None
    idempotency_key: str
    record_id: str | None
    attempts: int
    error_kind: str | None
    last_error: str | None
    http_status: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """Which document of which offer and target, the map's choice that took it, and the key
    its upload is sent with."""

    source: str
    offer_id: str
    target: str
    document_id: str
    choice: str
    required: bool
    key: str


@dataclass(frozen=True, slots=True)
class DocumentFailure:
    kind: str
    message: str
    http_status: int | None


def _now() -> datetime:
    return datetime.now(UTC)


class DocumentLedger:
    """Repository functions over ``offer_documents``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def of(self, source: str, offer_id: str, target: str | None = None) -> list[DocumentState]:
        d = offer_documents.c
        query = select(offer_documents).where(d.source == source, d.offer_id == offer_id)
        if target is not None:
            query = query.where(d.target == target)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(d.target, d.document_id)).all()
        return [_state(row) for row in rows]

    def posting(self, ref: DocumentRef, *, sha256: str | None, size: int | None) -> None:
        """Before the upload's first byte: an attempt more, and the document's checksum and size
        when it is all in by then (a retry); a first try streams it, and records them with
        ``done``."""
        self._write(ref, status=POSTING, attempt=True, sha256=sha256, size_bytes=size,
                    error_kind=None, last_error=None, http_status=None)  # fmt: skip

    def done(self, ref: DocumentRef, *, sha256: str, size: int, record_id: str | None) -> None:
        self._write(ref, status=DONE, sha256=sha256, size_bytes=size, record_id=record_id,
                    done_at=_now(), error_kind=None, last_error=None, http_status=None)  # fmt: skip

    def failed(self, ref: DocumentRef, failure: DocumentFailure) -> None:
        """The document did not get in this time; the checksum of a tried upload is kept."""
        self._write(ref, status=FAILED, error_kind=failure.kind, last_error=failure.message,
                    http_status=failure.http_status)  # fmt: skip

    def _write(self, ref: DocumentRef, *, status: str, attempt: bool = False,
               **values: object) -> None:  # fmt: skip
        now = _now()
        d = offer_documents.c
        row = {"source": ref.source, "offer_id": ref.offer_id, "target": ref.target,
               "document_id": ref.document_id, "choice": ref.choice, "required": ref.required,
               "status": status, "idempotency_key": ref.key, "attempts": 1 if attempt else 0,
               "updated_at": now, **values}  # fmt: skip
        changes: dict[str, object] = {"choice": ref.choice, "required": ref.required,
                                      "status": status, "updated_at": now, **values}  # fmt: skip
        if attempt:
            changes["attempts"] = d.attempts + 1
        statement = upsert_into(self._engine, offer_documents).values(**row)
        with transaction(self._engine) as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[d.source, d.offer_id, d.target, d.document_id], set_=changes
                )
            )

    def failed_of_processed(
        self, *, source: str | None = None, offer_ids: Sequence[str] = (), limit: int = 1000
    ) -> list[DocumentState]:
        """Documents that did not get in, of offers marked processed: optional ones, left
        for ``hirebridge retry --documents``."""
        d, o = offer_documents.c, offers.c
        joined = offer_documents.join(offers, and_(o.source == d.source, o.offer_id == d.offer_id))
        query = (
            select(offer_documents)
            .select_from(joined)
            .where(d.status != DONE, o.status == Status.PROCESSED.value)
        )
        if source is not None:
            query = query.where(d.source == source)
        if offer_ids:
            query = query.where(d.offer_id.in_(list(offer_ids)))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(d.updated_at).limit(limit)).all()
        return [_state(row) for row in rows]

    def counts(self, source: str | None = None) -> dict[str, int]:
        """Documents by state: done, posting, failed (required or not)."""
        d = offer_documents.c
        query = select(d.status, func.count()).group_by(d.status)
        if source is not None:
            query = query.where(d.source == source)
        with self._engine.connect() as conn:
            return {str(status): int(n) for status, n in conn.execute(query).all()}


def _state(row: object) -> DocumentState:
    m = row._mapping  # type: ignore[attr-defined]
    return DocumentState(
        source=m["source"], offer_id=m["offer_id"], target=m["target"],
        document_id=m["document_id"], choice=m["choice"], required=bool(m["required"]),
        status=m["status"], sha256=m["sha256"], size_bytes=m["size_bytes"],
        idempotency_key=m["idempotency_key"], record_id=m["record_id"], attempts=m["attempts"],
        error_kind=m["error_kind"], last_error=m["last_error"], http_status=m["http_status"],
        updated_at=m["updated_at"],
    )  # fmt: skip
