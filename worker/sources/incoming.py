"""A document's bytes as they arrive from the storage: checked, hashed and kept in the temporary
file as they stream, and handed on (to an upload) while they arrive.

Every chunk, before anything else sees it: the running size must stay within
``documents.max_bytes``. Chunks are taken as the transport reads them (no re-cutting, which
copied every byte twice) and added to the SHA-256 and written to the unnamed temporary file in a
thread of the document's own, in batches of about ``documents.chunk_bytes`` (one hand-off per
batch, not per chunk), up to ``BEHIND_BATCHES`` of them behind the download, so that the
download does not wait on the thread's every turn for a core.
``begin`` reads ahead until the first ``HEAD_BYTES`` are in and match the declared type (a PDF
starts with %PDF), so nothing leaves for a target before that check. ``content`` then gives the
upload its body: the first call streams the bytes as they arrive (the upload overlaps the
download); any later call (an upload retried) first reads the rest into the file, then replays
the file from its start. A failure of the download while an upload streams it reaches the
upload as ``DownloadBroke``, which no upload retries: the caller re-raises the error inside.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import IO

import httpx
import puremagic

from worker.errors import DocumentRefused, HirebridgeError

HEAD_BYTES = 8192  # enough for every signature puremagic reads at the start of a file
BEHIND_BATCHES = 4  # batches handed to the document's thread and not yet hashed and written
AHEAD_CHUNKS = 4  # chunks read ahead of a streaming upload (up to the transport's read size)


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A document on local disk (an unnamed file, positioned at 0), its size and SHA-256."""

    file: IO[bytes]
    size: int
    sha256: str


class DownloadBroke(Exception):
    """The download failed while an upload streamed it: ``error`` says why. Not a
    HirebridgeError, so that no upload retry replays a document that never arrived whole."""

    def __init__(self, error: HirebridgeError) -> None:
        super().__init__(str(error))
        self.error = error


Refuse = Callable[[str], DocumentRefused]
Failure = Callable[[httpx.TransportError], HirebridgeError]


class Incoming:
    """One download under way (its response open), into ``file``."""

    def __init__(
        self, response: httpx.Response, file: IO[bytes], *, mime: str, limit: int,
        chunk_bytes: int, refuse: Refuse, failure: Failure, document_id: str,
    ) -> None:  # fmt: skip
        self.file = file
        self._response = response
        self.size = 0
        self.complete = False
        self._mime, self._limit, self._id = mime, limit, document_id
        self._refuse, self._failure = refuse, failure
        self._digest = hashlib.sha256()
        self._chunks = response.aiter_bytes()
        self._ahead: list[bytes] = []  # read for the content check, not yet handed on
        self._broken: HirebridgeError | None = None
        self._crashed: Exception | None = None
        self._streamed = False
        # While an upload streams the download: a task reads ahead into a small queue.
        self._pump: asyncio.Future[None] | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=AHEAD_CHUNKS)
        self._discard = False
        # Hash and write off the event loop, in order: one thread per document, started with
        # its first batch (a shared pool would need each batch to wait for the one before).
        self._keeper: concurrent.futures.ThreadPoolExecutor | None = None
        self._keeping: deque[concurrent.futures.Future[None]] = deque()  # oldest first
        self._batch: list[bytes] = []  # read, not yet handed to the thread (< chunk_bytes)
        self._batch_bytes = 0
        self._chunk_bytes = chunk_bytes
        encoding = response.headers.get("content-encoding", "identity").lower()
        announced = response.headers.get("content-length", "")
        # The length the bytes will have, known before they arrive (decoded bytes differ).
        self.announced = int(announced) if announced.isdigit() and encoding == "identity" else None

    @property
    def length(self) -> int | None:
        """The document's size if known before it is all in (announced), or once it is."""
        return self.size if self.complete else self.announced

    async def begin(self) -> None:
        """Read ahead until the first bytes are checked against the declared type."""
        head = b""
        while len(head) < HEAD_BYTES and (chunk := await self._next()) is not None:
            self._ahead.append(chunk)
            head += chunk[: HEAD_BYTES - len(head)]
        if self._mime not in content_types(head):
            raise self._refuse(f"document {self._id}: its content is not a {self._mime} file "
                               "(its first bytes do not match the declared type)")  # fmt: skip

    async def finish(self) -> Downloaded:
        """The rest read into the file; the file at its start. Content is then from the file."""
        self._streamed = True
        self._ahead.clear()
        await self._stop_pump()
        while await self._next() is not None:
            pass
        await self._kept()
        self.file.flush()
        self.file.seek(0)
        return Downloaded(self.file, self.size, self._digest.hexdigest())

    async def close(self) -> None:
        """Let go of the storage's response (whatever was not read is dropped)."""
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._keeper is not None:  # no thread may write to the file once it is closed:
            self._keeper.shutdown(wait=True)  # BEHIND_BATCHES batches' work at most
        await self._response.aclose()

    def content(self) -> AsyncIterator[bytes]:
        """The document's bytes from the start: live the first time, from the file after."""
        if not self._streamed:
            self._streamed = True
            return self._live()
        return self._replay()

    async def _live(self) -> AsyncIterator[bytes]:
        """What was read ahead, then each chunk as the pump brings it: the download reads on
        while the upload writes, so that neither waits on the other's socket."""
        while self._ahead:
            yield self._ahead.pop(0)
        self._pump = asyncio.ensure_future(self._pumping())
        while (chunk := await self._queue.get()) is not None:
            yield chunk
        if self._broken is not None:
            raise DownloadBroke(self._broken)
        if self._crashed is not None:
            raise self._crashed

    async def _pumping(self) -> None:
        """Read the download into the queue (checked, hashed and written as it comes)."""
        try:
            while (chunk := await self._next()) is not None:
                if not self._discard:
                    await self._queue.put(chunk)
        except HirebridgeError:
            pass  # kept in self._broken by _next
        except Exception as exc:  # a bug or an OS error: the upload fails with it, not a hang
            self._crashed = exc
        if not self._discard:
            await self._queue.put(None)

    async def _stop_pump(self) -> None:
        """No one reads the queue any more: let the pump finish the download into the file."""
        if self._pump is None:
            return
        self._discard = True
        while not self._queue.empty():
            self._queue.get_nowait()  # frees a pump waiting to put
        await self._pump
        if self._crashed is not None:
            raise self._crashed

    async def _replay(self) -> AsyncIterator[bytes]:
        try:
            await self.finish()
        except HirebridgeError as exc:
            raise DownloadBroke(exc) from None
        while chunk := self.file.read(self._chunk_bytes):
            yield chunk

    async def _next(self) -> bytes | None:
        """The next chunk, checked, hashed and written; None at the end."""
        if self._broken is not None:
            raise self._broken
        if self.complete:
            return None
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            await self._hand_over()
            await self._kept()
            self.complete = True
            if self.size == 0:
                raise self._broken_by(self._refuse(f"document {self._id}: the storage sent "
                                                   "no bytes")) from None  # fmt: skip
            return None
        except httpx.TransportError as exc:
            raise self._broken_by(self._failure(exc)) from None
        self.size += len(chunk)
        if self.size > self._limit:
            raise self._broken_by(
                self._refuse(
                    f"document {self._id}: larger than documents.max_bytes ({mib(self._limit)})"
                )
            )
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= self._chunk_bytes:
            await self._hand_over()
        return chunk

    async def _hand_over(self) -> None:
        """Give the batch to the document's thread (which takes them in order), once fewer than
        ``BEHIND_BATCHES`` wait there."""
        if not self._batch:
            return
        await self._kept(leave=BEHIND_BATCHES - 1)
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if self._keeper is None:
            self._keeper = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="document"
            )
        self._keeping.append(self._keeper.submit(self._keep, batch))

    def _keep(self, batch: list[bytes]) -> None:
        """Hash and write a batch of chunks, in a thread: both let go of the GIL, so that the
        event loop meanwhile reads the next chunks and sends these on."""
        for chunk in batch:
            self._digest.update(chunk)
        self.file.writelines(batch)

    async def _kept(self, leave: int = 0) -> None:
        """Every batch handed over but the last ``leave`` is hashed and written (a failed write
        raises here). Batches done already cost no wait, and no wake-up of the event loop from
        the thread (a pipe's write and read)."""
        while len(self._keeping) > leave or (self._keeping and self._keeping[0].done()):
            oldest = self._keeping[0]
            if oldest.done():
                oldest.result()
            else:
                await asyncio.wrap_future(oldest)
            self._keeping.popleft()

    def _broken_by(self, error: HirebridgeError) -> HirebridgeError:
        self._broken = error
        return error


def content_types(head: bytes) -> set[str]:
    """The MIME types whose signature the first bytes of a file match (puremagic's table)."""
    if not head:
        return set()
    try:
        matches = puremagic.magic_string(head)
    except puremagic.PureError:
        return set()
    return {match.mime_type.lower() for match in matches if match.mime_type}


def mib(size: float) -> str:
    """A size in KiB or MiB: a byte count has enough digits for the PII scrubber to hide."""
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"
