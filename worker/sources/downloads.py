"""Downloading one offer document from the link PageUp hands out, into an unnamed temporary file.

- The link may point at another host (a pre-signed storage URL). The download client is not
  the PageUp client's: it never carries PageUp's token (nor any other credential), whatever
  host a link or a redirect names. Redirects are followed by hand, at most
  ``documents.max_redirects``, to http(s) only (https only unless ``documents.allow_http``).
- A link refused with 403 or 404 (expired, as pre-signed links do) is fetched fresh from
  PageUp once; refused again, the document is refused.
- The body streams to a ``tempfile.TemporaryFile``: it has no name on disk, so nothing is left
  behind after the upload, a failure, a cancel or even a crash. Never held whole in memory.
- Limits, each a DocumentRefused naming the document by its PageUp id: the MIME type and
  extension PageUp declares must be in ``documents.types``; the size PageUp declares, the
  storage announces and the bytes that arrive must stay within ``documents.max_bytes``; and
  the first bytes must be a file of the declared type (puremagic's signatures: a PDF starts
  with %PDF).
- The SHA-256 and size are computed while the bytes stream; the content is never logged.
- ``stream`` hands the download on while it arrives (``worker.sources.incoming``): an upload
  may start once the first bytes passed the type check; ``fetch`` gives it whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO
from urllib.parse import urljoin, urlsplit

import httpx
import structlog

from worker.errors import DocumentRefused, PermanentError, RetriableError
from worker.remote import failures, lanes
from worker.remote.http import parse_retry_after, record_call
from worker.remote.retry import with_retries
from worker.settings import DocumentSettings
from worker.sources.incoming import Downloaded, Incoming, mib
from worker.sources.pageup import PageUpClient

__all__ = ["Downloaded", "Downloader", "Incoming", "Wanted", "mib", "refusal"]
log = structlog.get_logger(__name__)
SYSTEM = "pageup_storage"
ROUTE = "(document link)"  # a link's path and query are the storage's secret: never recorded
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Wanted:
    """The document to fetch, as PageUp's Documents entry declares it."""

    document_id: str
    mime: str
    extension: str
    declared_bytes: int | None


class LinkRefused(Exception):
    """The storage answered 403 or 404: the link expired (or never worked)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class Downloader:
    """Fetches documents with its own client (no credentials); one per worker process."""

    def __init__(self, settings: DocumentSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self._client = client

    def refusal(self, wanted: Wanted) -> str | None:
        """Why PageUp's own description of the document is refused before any download."""
        return refusal(self.settings, wanted)

    @contextlib.asynccontextmanager
    async def fetch(self, pageup: PageUpClient, wanted: Wanted) -> AsyncIterator[Downloaded]:
        """The document in a temporary file for the block; the file is gone afterwards."""
        async with self.stream(pageup, wanted, whole=True) as incoming:
            yield await incoming.finish()

    @contextlib.asynccontextmanager
    async def stream(
        self, pageup: PageUpClient, wanted: Wanted, *, whole: bool = False
    ) -> AsyncIterator[Incoming]:
        """The document arriving, its first bytes checked (``whole``: all of it in), for the
        block; its temporary file is gone afterwards. What fails before the block (a link
        refused twice, a transport failure, a limit) is retried or raised here."""
        if (problem := self.refusal(wanted)) is not None:
            raise _refused(wanted, problem)
        with tempfile.TemporaryFile(dir=self.settings.temp_dir) as file:
            url = await pageup.document_url(wanted.document_id)
            try:
                incoming = await self._download(url, file, wanted, whole)
            except LinkRefused as first:
                log.info("document_link_refused", document_id=wanted.document_id,
                         status=first.status)  # fmt: skip
                url = await pageup.document_url(wanted.document_id)  # a fresh link, once
                try:
                    incoming = await self._download(url, file, wanted, whole)
                except LinkRefused as again:
                    text = (f"document {wanted.document_id}: the storage refused its download "
                            f"link twice (HTTP {again.status}), even a fresh one")  # fmt: skip
                    raise _refused(wanted, text) from None
            try:
                yield incoming
            finally:
                await incoming.close()

    async def _download(self, url: str, file: IO[bytes], wanted: Wanted, whole: bool) -> Incoming:
        async def once() -> Incoming:
            if file.seek(0, os.SEEK_END):  # a try before left bytes: start afresh
                file.seek(0)
                # ext4 (auto_da_alloc) then writes the whole file out when it is closed.
                file.truncate()
            response, request = await self._follow(url, wanted)
            incoming: Incoming | None = None
            try:
                incoming = self._incoming(response, request, file, wanted)
                await incoming.begin()
                if whole:
                    await incoming.finish()
            except BaseException:
                if incoming is None:
                    await response.aclose()
                else:  # its thread done with the file before a retry empties it
                    await incoming.close()
                raise
            return incoming

        return await with_retries(once, self.settings.retry)

    async def _follow(self, url: str, wanted: Wanted) -> tuple[httpx.Response, httpx.Request]:
        """The storage's 200 response, open to stream (redirects followed by hand)."""
        for _hop in range(self.settings.max_redirects + 1):
            self._check_scheme(url, wanted)
            request = self._client.build_request(
                "GET", url, headers={"Accept": "*/*"}, timeout=self.settings.retry.timeout_seconds
            )
            started = time.perf_counter()
            call = (SYSTEM, "download_document", "GET", ROUTE)
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                error, cause = self._transport_failure(exc, request)
                record_call(call, "connection_error", started, cause)
                raise error from None
            record_call(call, response.status_code, started)
            if response.status_code in _REDIRECTS and "location" in response.headers:
                await response.aclose()
                url = urljoin(url, response.headers["location"])
                continue
            try:
                self._check_status(response)
            except BaseException:
                await response.aclose()
                raise
            return response, request
        text = (f"document {wanted.document_id}: its download link redirected more than "
                f"{self.settings.max_redirects} times (documents.max_redirects)")  # fmt: skip
        raise _refused(wanted, text)

    def _incoming(
        self, response: httpx.Response, request: httpx.Request, file: IO[bytes], wanted: Wanted
    ) -> Incoming:
        limit = self.settings.max_bytes
        announced = response.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > limit:
            text = (f"document {wanted.document_id}: the storage announces "
                    f"{mib(int(announced))}, over documents.max_bytes ({mib(limit)})")  # fmt: skip
            raise _refused(wanted, text)
        return Incoming(
            response, file, mime=wanted.mime, limit=limit, chunk_bytes=self.settings.chunk_bytes,
            refuse=lambda text: _refused(wanted, text), document_id=wanted.document_id,
            failure=lambda exc: self._transport_failure(exc, request)[0],
        )  # fmt: skip

    def _transport_failure(
        self, exc: httpx.TransportError, request: httpx.Request
    ) -> tuple[RetriableError, str]:
        """A connection failure or timeout, named by host and port (never the link)."""
        timeout = self.settings.retry.timeout_seconds
        failure = failures.describe(exc, request.url, timeout=timeout, trust=lanes.trust_store(
            self._client))  # fmt: skip
        error = RetriableError(failure.message, system=SYSTEM, stage="download_document")
        return error, failure.cause

    def _check_scheme(self, url: str, wanted: Wanted) -> None:
        scheme = urlsplit(url).scheme
        allowed = ("https", "http") if self.settings.allow_http else ("https",)
        if scheme not in allowed:
            text = (f"document {wanted.document_id}: its download link is {scheme or 'not'} a "
                    f"URL hirebridge follows ({' or '.join(allowed)})")  # fmt: skip
            raise _refused(wanted, text)

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 200:
            return
        if status in (403, 404):
            raise LinkRefused(status)
        if status in (408, 429) or status >= 500:
            wait = parse_retry_after(response.headers.get("retry-after"), cap=60.0)
            raise RetriableError(
                f"HTTP {status} from the document storage", system=SYSTEM, status=status,
                stage="download_document", retry_after=wait,
            )  # fmt: skip
        raise PermanentError(f"HTTP {status} from the document storage", system=SYSTEM,
                             status=status, stage="download_document")  # fmt: skip


def refusal(settings: DocumentSettings, wanted: Wanted) -> str | None:
    """Why a document is refused on what PageUp declares (type, extension, size), or None."""
    allowed = settings.extensions_of(wanted.mime)
    if not allowed:
        shown = wanted.mime or "no type"
        return f"document {wanted.document_id}: type {shown} is not allowed (documents.types)"
    if wanted.extension not in allowed:
        return (
            f"document {wanted.document_id}: extension {wanted.extension or '(none)'} does not "
            f"fit its type {wanted.mime} (documents.types allows {', '.join(allowed)})"
        )
    if wanted.declared_bytes is not None and wanted.declared_bytes > settings.max_bytes:
        return (
            f"document {wanted.document_id}: PageUp declares {mib(wanted.declared_bytes)}, over "
            f"documents.max_bytes ({mib(settings.max_bytes)})"
        )
    return None


def _refused(wanted: Wanted, text: str) -> DocumentRefused:
    return DocumentRefused(text, system="pageup", stage="document",
                           record_ids=(wanted.document_id,))  # fmt: skip
