"""Saying why a remote call failed below HTTP: which host and port, and what went wrong.

httpx reports most of these as a bare ``ConnectError`` or ``ReadError``; the cause (a DNS
answer, a refused port, a certificate, a reset) is further down the exception chain, put there
by httpcore and anyio. On-call needs that cause, so it is looked up, never guessed from text.
Messages name ``host:port`` only: a URL's path and query may hold record ids or credentials.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

# OS errors by errno: what the peer or the network did, in words.
_OS_CAUSES = {
    errno.ECONNREFUSED: ("connection_refused", "connection refused"),
    errno.ECONNRESET: ("connection_reset", "connection reset by the peer"),
    errno.ECONNABORTED: ("connection_closed", "connection closed by the peer"),
    errno.EPIPE: ("connection_closed", "connection closed by the peer"),
    errno.ENETUNREACH: ("network_unreachable", "network unreachable"),
    errno.EHOSTUNREACH: ("host_unreachable", "host unreachable"),
    errno.ETIMEDOUT: ("timeout_os", "timed out (the operating system gave up)"),
}
# Where a timeout struck, after "timed out after N s ".
_TIMEOUT_PHASES: dict[type[httpx.TimeoutException], tuple[str, str]] = {
    httpx.ConnectTimeout: ("connect", "connecting to {where}"),
    httpx.ReadTimeout: ("read", "waiting for {where} to answer"),
    httpx.WriteTimeout: ("write", "sending the request to {where}"),
    httpx.PoolTimeout: ("pool", "waiting for a free connection to {where}"),
}


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """``cause`` is a short snake_case code (for breadcrumbs); ``message`` is for people."""

    cause: str
    message: str


def describe(
    exc: httpx.TransportError, url: httpx.URL, *, timeout: float, trust: str
) -> TransportFailure:
    """What failed, for a call to ``url`` with ``timeout`` seconds per phase; ``trust`` names
    the CA certificates the client verifies against (see ``lanes.trust_store``)."""
    where = host_port(url)
    if isinstance(exc, httpx.TimeoutException):
        phase, doing = _TIMEOUT_PHASES.get(type(exc), ("other", "talking to {where}"))
        message = f"timed out after {timeout:g}s {doing.format(where=where)}"
        return TransportFailure(f"timeout_{phase}", message)
    code, cause = _cause(exc, trust)
    if isinstance(exc, httpx.ConnectError):
        return TransportFailure(code, f"cannot connect to {where}: {cause}")
    return TransportFailure(code, f"connection to {where} failed: {cause}")


def host_port(url: httpx.URL) -> str:
    """``host:port`` (``[v6]:port``), with the scheme's default port made explicit."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cause(exc: httpx.TransportError, trust: str) -> tuple[str, str]:
    for link in _chain(exc):
        if isinstance(link, ssl.SSLCertVerificationError):
            why = link.verify_message or link.reason or "certificate not trusted"
            return "tls_verification_failed", f"TLS verification failed ({why}) against {trust}"
        if isinstance(link, ssl.SSLError):
            why = (link.reason or type(link).__name__).lower().replace("_", " ")
            return "tls_failed", f"TLS handshake failed ({why})"
        if isinstance(link, socket.gaierror):
            if link.errno == socket.EAI_AGAIN:
                return "name_lookup_failed", "name lookup failed (DNS did not answer, try again)"
            return "name_not_resolved", "name not resolved"
        if isinstance(link, OSError) and link.errno in _OS_CAUSES:
            return _OS_CAUSES[link.errno]
    if isinstance(exc, httpx.RemoteProtocolError):
        # httpcore's own wording: "Server disconnected without sending a response." before
        # the answer, "peer closed connection without sending complete message body" within.
        text = str(exc).lower()
        if "disconnected" in text:
            return "connection_closed", "the peer closed the connection before answering"
        if "peer closed" in text:
            return "connection_closed", "the peer closed the connection mid-answer"
        return "invalid_http", "the peer did not answer in valid HTTP"
    return "transport_error", type(exc).__name__


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups, nearest first."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        if isinstance(link, BaseExceptionGroup):
            pending.extend(link.exceptions)
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)
