"""Recording failed calls to PageUp for PageUp support.

PageUp's integration guide: "Integrators must log all relevant errors and be able to provide a
copy to PageUp to assist with troubleshooting". Each PageUp client is given an observer (see
``worker.remote.http.exchange``) that turns a failed call into a row: when, which source, the
method and path template (never the URL: ids in paths), the status and the try, PageUp's own
error messages, its request id if it sent one, and how long the call took. No body and no header
other than the request id.

Only PageUp's two documented error shapes are read (``[{"message", "field"}]`` and
``{"Message"}``): no other key of a body, no header, since anything else may quote the record.
Those messages are scrubbed more strictly than a log line (``scrub_strictly``: quoted values,
dates, amounts, long numbers, emails), because the log leaves the deployment. Rows are
written in batches through the store's thread, so a failing PageUp call costs its caller a
list append.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine

from worker import metrics
from worker.redact import scrub_strictly, scrub_text
from worker.remote.http import FailedExchange, Observer, Reply
from worker.settings import ErrorLogSettings
from worker.store.errorlog import ErrorLog, FailedCall
from worker.store.spool import Spool
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)
# A request id is an opaque token: letters, digits and a few separators, at most 128.
_ID_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}$")
_LETTER = re.compile(r"[A-Za-z]")
_MAX_MESSAGES, _MAX_CHARS = 10, 400


def pageup_messages(reply: Reply) -> str | None:
    """PageUp's own messages in ``reply``: ``[{"message": ..., "field": ...}]`` or
    ``{"Message": ...}`` (or its token endpoint's OAuth2 ``{"error", "error_description"}``),
    strictly scrubbed; None for any other body (it is not read)."""
    try:
        data = json.loads(reply.body.decode("utf-8")) if reply.body else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    items = data if isinstance(data, list) else [data]
    found: list[str] = []
    for item in items[:_MAX_MESSAGES]:
        if not isinstance(item, dict):
            continue
        message = item.get("message", item.get("Message"))
        if message is None and isinstance(item.get("error"), str):  # RFC 6749's error answer
            described = item.get("error_description")
            message = item["error"] + (f": {described}" if isinstance(described, str) else "")
        if not isinstance(message, str) or not message.strip():
            continue
        field = item.get("field", item.get("Field"))
        named = isinstance(field, str) and field.strip()
        found.append(f"{field}: {message}" if named else message)
    text = scrub_strictly("; ".join(found))[:_MAX_CHARS]
    return text or None


def request_id(headers: object, names: Sequence[str]) -> str | None:
    """The first of ``names`` present in ``headers``, if it looks like an id.

    An id with letters (a UUID, a trace id) is kept as it is; one of digits only is
    scrubbed like a remote message (a long number may be personal), and anything else
    (spaces, an email address, too long) is not kept at all.
    """
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name in names:
        value = get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        value = value.strip()
        if not _ID_SHAPE.match(value):
            return None
        return value if _LETTER.search(value) else scrub_text(value)
    return None


def failed_call(
    source: str, failed: FailedExchange, names: Sequence[str], now: datetime | None = None
) -> FailedCall:
    """The error log's row for one failed exchange with PageUp."""
    reply = failed.reply
    if reply is not None:
        messages = pageup_messages(reply)
        rid = request_id(reply.headers, names)
    else:
        messages = scrub_strictly(failed.problem or "")[:_MAX_CHARS] or None
        rid = None
    offer_id = structlog.contextvars.get_contextvars().get("offer_id")
    return FailedCall(
        at=now or datetime.now(UTC), source=source, method=failed.method,
        route=failed.route[:200], stage=failed.stage[:48], status=failed.status,
        attempt=failed.attempt, messages=messages, request_id=rid,
        duration_ms=round(failed.seconds * 1000),
        offer_id=offer_id if isinstance(offer_id, str) and len(offer_id) <= 64 else None,
    )  # fmt: skip


class PageUpErrors:
    """The error log's writer: one observer per source, one batch writer for all."""

    def __init__(self, engine: Engine, store: StoreThread, settings: ErrorLogSettings) -> None:
        self.log = ErrorLog(engine)
        self._settings = settings
        self._names = tuple(settings.request_id_headers)
        self._spool: Spool[FailedCall] = Spool(store, self.log.add, name="pageup_errors")

    def observer(self, source: str) -> Observer:
        """What ``source``'s PageUp client tells of each failed call."""

        def observe(failed: FailedExchange) -> None:
            self._spool.add(failed_call(source, failed, self._names))
            metrics.PAGEUP_ERRORS.labels(source).inc()

        return observe

    def purge(self, now: datetime | None = None) -> int:
        """Delete rows past the retention (runs on the store's thread)."""
        days = self._settings.retention_days
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        purged = self.log.purge(cutoff)
        if purged:
            log.info("pageup_errors_purged", count=purged, older_than_days=days)
        return purged

    async def drain(self) -> None:
        await self._spool.drain()
