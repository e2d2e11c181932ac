"""OAuth2 client-credentials tokens: fetched once, cached, refreshed before they expire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from worker import metrics
from worker.errors import PermanentError
from worker.remote.http import Observer, exchange, raise_for_status, route_of
from worker.remote.retry import with_retries
from worker.settings import RetrySettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Token:
    header: str
    lifetime: float
    refresh_at: float = 0.0


class ClientCredentials:
    """A cached bearer token for one client id. Safe to share between concurrent tasks."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        system: str,
        retry: RetrySettings,
        refresh_margin: float = 30.0,
        retry_after_cap: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        observe: Observer | None = None,
    ) -> None:
        self._client = client
        self._observe = observe  # told of failed token calls (the PageUp error log)
        self._form = {"grant_type": "client_credentials", "client_id": client_id}
        self._secret = client_secret
        if scope:
            self._form["scope"] = scope
        self._token_url = token_url
        self._system = system
        self._retry = retry
        self._margin = refresh_margin
        self._retry_after_cap = retry_after_cap
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.refused: bool = False

    async def header(self) -> str:
        """The ``Authorization`` header value, fetching a token if none is fresh."""
        token = self._token
        if token is not None and self._fresh(token):
            return token.header
        async with self._lock:
            token = self._token
            if token is None or not self._fresh(token):
                token = await with_retries(self._fetch, self._retry)
                self._token = token
            return token.header

    def _fresh(self, token: Token) -> bool:
        return self._clock() < token.refresh_at

    def invalidate(self, header: str) -> None:
        """Forget the token that the remote just refused (if no newer one replaced it)."""
        if self._token is not None and self._token.header == header:
            self._token = None

    async def _fetch(self) -> Token:
        form = {**self._form, "client_secret": self._secret}
        started = self._clock()
        reply = await exchange(
            self._client,
            "POST",
            self._token_url,
            system=self._system,
            stage="token",
            route=route_of(self._token_url),
            timeout=self._retry.timeout_seconds,
            form=form,
            observe=self._observe,
        )
        try:
            raise_for_status(reply, success=frozenset({200}), retry_after_cap=self._retry_after_cap)
        except PermanentError:
            self.refused = True
            raise
        token = _parse_token(reply.json(), system=self._system)
        self.refused = False
        metrics.TOKEN_REFRESHES.labels(self._system).inc()
        log.info("token_refreshed", system=self._system, expires_in=round(token.lifetime))
        # Refresh ahead of expiry, but never so early that a short-lived token is never reused.
        margin = min(self._margin, token.lifetime / 10)
        return Token(token.header, token.lifetime, started + token.lifetime - margin)


def _parse_token(data: Any, *, system: str) -> Token:
    """Validate a token response."""

    def bad(what: str) -> PermanentError:
        return PermanentError(f"token response {what}", system=system, stage="token")

    if not isinstance(data, dict):
        raise bad("is not a JSON object")
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise bad("has no access_token")
    lifetime = data.get("expires_in", 300)
    if isinstance(lifetime, str) and lifetime.isdigit():
        lifetime = int(lifetime)
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        raise bad("has an invalid expires_in")
    token_type = data.get("token_type") or "Bearer"
    if not isinstance(token_type, str):
        raise bad("has an invalid token_type")
    # PageUp says "call the API with <token_type> <access_token>"; normalise the usual casing.
    if token_type.lower() == "bearer":
        token_type = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    return Token(f"{token_type} {access}", float(lifetime))
