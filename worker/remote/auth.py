"""Outbound authentication headers for an HTTP destination or source: none, HTTP Basic, a bearer
token, an API key header, or OAuth2 client credentials (a cached, refreshed token)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from worker.remote.tokens import ClientCredentials
from worker.settings import AuthSettings, RetrySettings


class OutboundAuth:
    """Builds the ``Authorization`` (or API key) header for one destination."""

    def __init__(
        self,
        settings: AuthSettings,
        client: httpx.AsyncClient,
        *,
        system: str,
        retry: RetrySettings,
    ) -> None:
        self._settings = settings
        self._static: dict[str, str] = {}
        self.tokens: ClientCredentials | None = None
        secret = _secret
        if settings.type == "basic":
            pair = f"{settings.username}:{secret(settings.password)}".encode()
            self._static = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        elif settings.type == "bearer":
            self._static = {"Authorization": f"Bearer {secret(settings.token)}"}
        elif settings.type == "api_key":
            self._static = {settings.header_name: secret(settings.api_key)}
        elif settings.type == "oauth2":
            self.tokens = ClientCredentials(
                client,
                token_url=str(settings.token_url),
                client_id=str(settings.client_id),
                client_secret=secret(settings.client_secret),
                scope=settings.scope,
                system=system,
                retry=retry,
            )

    async def headers(self) -> dict[str, str]:
        if self.tokens is not None:
            return {"Authorization": await self.tokens.header()}
        return self._static

    def refused(self, headers: dict[str, str]) -> bool:
        """After a 401: forget a refreshable token and say whether one more try is worth it."""
        if self.tokens is None:
            return False
        self.tokens.invalidate(headers["Authorization"])
        return True


def _secret(value: Any) -> str:
    return "" if value is None else str(value.get_secret_value())
