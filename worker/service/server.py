"""The service's HTTP server: uvicorn, with the limits it does not have on its own.

uvicorn parses requests with httptools (llhttp), which caps neither the size nor the number of
headers: a header that never ends is buffered without bound, and 500 headers reach the app.
Its only timeout is the keep-alive one, armed after a response: a request whose head or body
never finishes holds its connection for ever. (h11 has ``h11_max_incomplete_event_size``, but
answers 400, counts no headers, and is the slower parser.) So the protocol here adds, per
request:

- ``service.max_header_bytes`` for the request line and headers together, and
  ``service.max_headers``: past either, 431 and the connection is closed;
- ``service.request_timeout_seconds`` from the connection opening or the request's first byte
  to its last: past it, 408 (unless the app already answered) and the connection is closed.
  The app sees the client gone, as if it had hung up.
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import Any, ClassVar

import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from worker.settings import ServiceSettings

log = structlog.get_logger(__name__)
# After a refusal, what the client still sends is read and dropped this long before the
# connection closes: closing with unread data would reset it, and the client would see a
# reset instead of the 431 (it writes its whole request before it reads).
LINGER_SECONDS = 2.0


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing; the parser reports it as an error."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the caps and the deadline above (one per connection)."""

    max_header_bytes: ClassVar[int] = 16384
    max_headers: ClassVar[int] = 100
    request_timeout: ClassVar[float] = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # no request yet, or one whose headers are not all in
        self._began = False  # a request began during the current data_received
        self._head_bytes = 0  # the head as parsed (URL, complete headers)
        self._head_raw = 0  # bytes received while the head is incomplete
        self._header_count = 0
        self._too_large: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return
        in_head, self._began = self._in_head, False
        super().data_received(data)
        # The parser buffers a header until it ends: count what arrives while the head is
        # incomplete. A chunk in which a request began may hold the end of the one before.
        if in_head and self._in_head and not self._began and not self._refused:
            self._head_raw += len(data)
            if self._head_raw > self.max_header_bytes:
                self._refuse(431, f"headers over {self.max_header_bytes} bytes")

    def send_400_response(self, msg: str) -> None:
        if self._too_large is not None:  # our callback stopped the parser
            self._refuse(431, self._too_large)
        else:
            super().send_400_response(msg)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._began = True, True
        self._head_bytes = self._head_raw = self._header_count = 0
        if self._deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._too_large = f"more than {self.max_headers} headers"
            raise _HeadTooLarge
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)  # ": " and CRLF

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        super().on_message_complete()

    # Limits

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._too_large = f"headers over {self.max_header_bytes} bytes"
            raise _HeadTooLarge

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self._refused or self.transport.is_closing():
            return
        reason = f"request not received within {self.request_timeout:g} s"
        cycle = self.cycle  # the request whose head came last, if any
        if self._in_head and (cycle is None or cycle.response_complete):
            self._refuse(408, reason)  # no app is running: nothing else is written
        elif not self._in_head and not cycle.response_started:
            cycle.disconnected = True  # the app waiting for the body sees the client gone
            cycle.message_event.set()
            self._refuse(408, reason)
        else:  # a response is being written, or was, without the whole body: no room for 408
            log.warning("http_request_abandoned", reason=reason)
            self.transport.close()

    def _refuse(self, status: int, reason: str) -> None:
        self._disarm()
        log.warning("http_request_refused", http_status=status, reason=reason)
        body = json.dumps({"status": "error", "message": reason}).encode()
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode()]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json", b"content-length: %d" % len(body),
                 b"connection: close"]  # fmt: skip
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


def guarded_protocol(service: ServiceSettings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with this service's limits (uvicorn makes one per connection)."""
    limits = {
        "max_header_bytes": service.max_header_bytes,
        "max_headers": service.max_headers,
        "request_timeout": service.request_timeout_seconds,
    }
    return type("ServiceHttpProtocol", (GuardedHttpToolsProtocol,), limits)


def server_config(app: Any, service: ServiceSettings) -> uvicorn.Config:
    """How ``hirebridge run`` serves ``app`` (its probes, metrics and inbound endpoints)."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from worker.console.web import KeepPeer

    # X-Forwarded-For is applied here (not by uvicorn's own wrapping) so that KeepPeer, outside
    # it, can keep the TCP peer: the console believes an auth proxy by its own address only.
    if service.trusted_proxies:
        app = ProxyHeadersMiddleware(app, trusted_hosts=list(service.trusted_proxies))
    return uvicorn.Config(
        KeepPeer(app), host=service.host, port=service.port, http=guarded_protocol(service),
        ws="none", log_config=None, access_log=False, lifespan="off",
        timeout_graceful_shutdown=5, proxy_headers=False,
    )  # fmt: skip
