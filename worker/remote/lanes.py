"""One small connection pool per pipeline worker ("lane").

httpcore (1.0.9, the newest release) re-checks every pooled connection, with a syscall or
two each, on every request, and its idle-connection count is quadratic (encode/httpcore#928
is still open). With one shared pool of ~50 connections that cost ~40 ms of CPU per offer.
A lane handles one offer at a time, so its pool stays at a handful of keep-alive connections.
"""

from __future__ import annotations

import contextvars
import functools
import ssl
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from worker import __version__
from worker.errors import ConfigError
from worker.remote.transport import Transport

_lane: contextvars.ContextVar[httpx.AsyncClient | None] = contextvars.ContextVar(
    "hirebridge_http_lane", default=None
)
CONNECTIONS_PER_LANE = 8  # three parallel fetches, a post, a token call, room to spare
# The CA bundle each client was built with, so that a failed verification can say what it
# was checked against. httpx keeps the SSL context out of reach.
_bundles: weakref.WeakKeyDictionary[httpx.AsyncClient, Path | None] = weakref.WeakKeyDictionary()


@functools.cache
def tls_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """The system's CAs, plus ``ca_bundle`` if given. Verification is never turned off.

    Cached: loading a CA bundle costs ~40 ms of CPU, so every client shares one context.
    """
    context = ssl.create_default_context()
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                [f"tls.ca_bundle: {ca_bundle}: not a PEM CA bundle ({exc})"]
            ) from None
    return context


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing (one for the whole process: it refuses every cookie)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise TypeError("hirebridge's HTTP clients keep no cookies")

    def __setitem__(self, name: str, value: str) -> None:
        raise TypeError("hirebridge's HTTP clients keep no cookies")

    def update(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError("hirebridge's HTTP clients keep no cookies")


_NO_COOKIES = _NoCookies()


class CookielessClient(httpx.AsyncClient):
    """An httpx client that neither keeps nor sends cookies.

    The remote systems are APIs authenticated per call (OAuth2 bearer tokens, API keys), and
    none needs a cookie. The aiohttp session underneath keeps none either (its jar is a
    ``DummyCookieJar``: worker/remote/transport.py). Keeping them would let one system's
    session (or one tenant's, on a shared host) ride along on later calls; and httpx reads
    every response for them: building urllib's request and response objects for its cookie
    jar was about 5% of the offer sync's CPU (py-spy, issue #13).
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("this client keeps no cookies")


def new_client(max_connections: int, ca_bundle: Path | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    client = CookielessClient(
        transport=Transport(verify=tls_context(ca_bundle), limits=limits),
        limits=limits,
        headers={"User-Agent": f"hirebridge/{__version__}"},
        follow_redirects=False,
        verify=tls_context(ca_bundle),
    )
    _bundles[client] = ca_bundle
    return client


def trust_store(client: httpx.AsyncClient) -> str:
    """The CA certificates ``client`` verifies servers against, in words."""
    if client not in _bundles:
        return "the HTTP client's own CA store"
    bundle = _bundles[client]
    if bundle is None:
        return "the system's default CA store"
    return f"the system's CA store plus tls.ca_bundle {bundle}"


def current(default: httpx.AsyncClient) -> httpx.AsyncClient:
    """The lane's client when the caller runs inside a lane, else ``default``."""
    return _lane.get() or default


class HttpLanes:
    """A fixed set of clients; ``bind(n)`` makes lane ``n``'s client current for a block."""

    def __init__(self, count: int, ca_bundle: Path | None = None) -> None:
        self._clients = [new_client(CONNECTIONS_PER_LANE, ca_bundle) for _ in range(count)]

    @contextmanager
    def bind(self, index: int) -> Iterator[None]:
        token = _lane.set(self._clients[index % len(self._clients)])
        try:
            yield
        finally:
            _lane.reset(token)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
