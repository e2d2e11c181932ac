"""The transport under every httpx client: aiohttp's, through the ``httpx-aiohttp`` package.

httpx stays the API; only the bytes on the socket are moved by aiohttp instead of httpcore.
Measured on the 2-core CI machine (bench/transports.py), CPU per GET with 16 in flight against
one loopback server: httpcore with one shared pool 1.9 ms, httpcore with a pool per lane 0.84 ms,
this transport 0.52 ms, bare aiohttp 0.15 ms.

httpx-aiohttp 0.2 leaves three things to fix, which this module does:

- Errors. It turns a refused port, an unresolvable name or an untrusted certificate into
  ``ConnectTimeout``, and a server hanging up into ``ConnectTimeout`` too. They are mapped
  here as httpcore raises them, the aiohttp error kept as the cause (``failures.describe``
  finds the OS or TLS error below it).
- Header names. It sends them lower-cased; here they go out as httpx writes them, so a remote
  system sees the same request whichever transport sent it.
- The write timeout. aiohttp has none: a server that stops reading an upload would hold the
  call for ever. Here each chunk of a request body must be taken by the socket within the
  call's write timeout; bodies up to ``SMALL_BODY`` bytes fit in the kernel's buffer.
- The read size. It hands a response body on in slices of 16 KiB, each through half a dozen
  async generators (aiohttp's, its own, httpx's); here a read takes what aiohttp holds, up to
  ``READ_BYTES`` (its own buffer's size), so a large download costs a sixteenth of the steps.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

SMALL_BODY = 64 * 1024
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
_CHUNK = 64 * 1024
READ_BYTES = 256 * 1024  # aiohttp's read buffer (read_bufsize): a read never waits to fill it

# (aiohttp error, httpx error, message when the aiohttp one says too little), most specific first.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError], str | None], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout, None),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout, None),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout, None),
    (aiohttp.ClientConnectorError, httpx.ConnectError, None),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError,
     "Server disconnected without sending a response."),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError,
     "peer closed connection without sending complete message body"),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError, None),
    (aiohttp.ClientOSError, httpx.ReadError, None),
    (aiohttp.ClientError, httpx.TransportError, None),
)  # fmt: skip


def as_httpx_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error httpcore would have raised for aiohttp's ``exc`` (None: not aiohttp's)."""
    for source, target, message in _ERRORS:
        if isinstance(exc, source):
            return target(message or str(exc) or type(exc).__name__)
    return None


def _cause_of(exc: BaseException) -> BaseException:
    """What to chain the httpx error to: the OS or TLS error under a failed connect (aiohttp's
    certificate error looks like an ``ssl`` one but lacks its details), else ``exc``."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error
    return exc


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        # httpx-aiohttp's own mapping: undo it from the aiohttp error it kept as the cause.
        cause = exc.__cause__
        mapped = as_httpx_error(cause) if cause is not None else None
        if cause is None or mapped is None:
            raise
        raise mapped from _cause_of(cause)
    except aiohttp.ClientError as exc:
        mapped = as_httpx_error(exc)
        assert mapped is not None
        raise mapped from _cause_of(exc)


class _HeadersAsWritten(httpx.Headers):
    """Request headers that aiohttp reads with their names as httpx wrote them."""

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return [(k.decode(self.encoding), v.decode(self.encoding)) for k, v in self.raw]


class _Body(httpx.AsyncByteStream):
    """A request body handed to aiohttp chunk by chunk: each must be written within
    ``seconds``, or the call fails with a WriteTimeout (``deadline`` is the call's)."""

    def __init__(self, chunks: Any, deadline: asyncio.Timeout, seconds: float | None) -> None:
        self._chunks = chunks
        self._deadline = deadline
        self._seconds = seconds
        # What the body's own source raised (a download cut short under a streamed upload):
        # aiohttp would report it as a lost connection, which the caller would retry.
        self.error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            async for chunk in self._chunks:
                if self._seconds is not None:
                    self._deadline.reschedule(loop.time() + self._seconds)
                yield chunk
        except Exception as exc:
            self.error = exc
            raise
        self._deadline.reschedule(None)  # all written: the read timeout takes over


async def _pieces(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), _CHUNK):
        yield content[start : start + _CHUNK]


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _httpx_errors():
            await self._stream.aclose()


class Transport(AiohttpTransport):
    """``AiohttpTransport`` with httpcore's errors, header names as written and a write
    timeout (see the module's docstring). TLS: the SSL context given is the only one used."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self.ssl_context, limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry,
        )  # fmt: skip
        # httpx writes every header it means to send; aiohttp adds none of its own (it would
        # label a streamed body application/octet-stream). No cookie is kept or sent: see
        # worker/remote/lanes.py, CookielessClient.
        return aiohttp.ClientSession(connector=connector, skip_auto_headers=_AUTO_HEADERS,
                                     cookie_jar=aiohttp.DummyCookieJar())  # fmt: skip

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers = _HeadersAsWritten(request.headers.raw)
        write = request.extensions.get("timeout", {}).get("write")
        body: _Body | None = None
        try:
            async with asyncio.timeout(None) as deadline:
                body = _pace_body(request, deadline, write)
                with _httpx_errors():
                    response = await super().handle_async_request(request)
        except TimeoutError:
            raise httpx.WriteTimeout("the request body was not taken in time") from None
        except httpx.TransportError:
            if body is not None and body.error is not None:
                raise body.error from None  # the body's source failed, not the connection
            raise
        assert isinstance(response.stream, AiohttpResponseStream)
        response.stream.CHUNK_SIZE = READ_BYTES
        response.stream = _ResponseBody(response.stream)
        return response


def _pace_body(
    request: httpx.Request, deadline: asyncio.Timeout, write: float | None
) -> _Body | None:
    """Give aiohttp a large or streamed body chunk by chunk, under the write timeout."""
    try:
        content = request.content
    except httpx.RequestNotRead:
        body = request.stream = _Body(request.stream, deadline, write)
        return body
    if len(content) > SMALL_BODY:
        body = request.stream = _Body(_pieces(content), deadline, write)
        del request._content  # the transport then sends the stream, Content-Length kept
        return body
    return None
