"""Client-credentials tokens: cached, refreshed before expiry, invalidated on refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from worker.errors import PermanentError
from worker.remote.tokens import ClientCredentials
from worker.settings import RetrySettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(handler: Any, clock: Clock) -> tuple[ClientCredentials, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    tokens = ClientCredentials(
        client, token_url="http://login/connect/token", client_id="id", client_secret="s3cr3t",
        scope="Public.Offer.Read Public.Offer.Write", system="pageup",
        retry=RetrySettings(attempts=2, backoff_initial_seconds=0), refresh_margin=30, clock=clock,
    )  # fmt: skip
    return tokens, client


def test_token_is_cached_until_shortly_before_expiry() -> None:
    issued: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        issued.append(form)
        return httpx.Response(200, json={"access_token": f"t{len(issued)}", "expires_in": 300,
                                         "token_type": "bearer"})  # fmt: skip

    clock = Clock()

    async def go() -> list[str]:
        tokens, client = make(handler, clock)
        async with client:
            headers = await asyncio.gather(*(tokens.header() for _ in range(5)))
            clock.now += 269
            headers.append(await tokens.header())
            clock.now += 2  # inside the 30 s margin
            headers.append(await tokens.header())
            tokens.invalidate(headers[-1])
            headers.append(await tokens.header())
            return headers

    headers = asyncio.run(go())
    assert headers == ["Bearer t1"] * 6 + ["Bearer t2", "Bearer t3"]
    assert issued[0]["grant_type"] == "client_credentials"
    assert issued[0]["scope"] == "Public.Offer.Read+Public.Offer.Write"
    assert issued[0]["client_secret"] == "s3cr3t"


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [(401, {"error": "invalid_client"}, "HTTP 401: invalid_client"),
     (200, {"expires_in": 300}, "has no access_token"),
     (200, {"access_token": "x", "expires_in": -1}, "invalid expires_in")],
)  # fmt: skip
def test_refused_or_invalid_token_responses(status: int, body: Any, problem: str) -> None:
    async def go() -> None:
        tokens, client = make(lambda request: httpx.Response(status, json=body), Clock())
        async with client:
            await tokens.header()

    with pytest.raises(PermanentError, match=problem) as caught:
        asyncio.run(go())
    assert caught.value.stage == "token"
