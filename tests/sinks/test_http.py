"""The HTTP sink against a recording endpoint on loopback: auth, ids, idempotency, refusals."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.errors import PermanentError, RetriableError
from worker.settings import HrisSettings
from worker.simulators.server import BackgroundServer
from worker.sinks.http import Delivered, HttpSink


class Endpoint:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[Response] = []
        self.tokens = 0

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.requests.append({"headers": dict(request.headers), "body": await request.json()})
            if self.replies:
                return self.replies.pop(0)
            return JSONResponse({"data": {"id": 42}}, status_code=201,
                                headers={"Location": "/v1/employees/77"})  # fmt: skip

        async def token(request: Request) -> Response:
            self.tokens += 1
            return JSONResponse({"access_token": f"tok{self.tokens}", "expires_in": 600})

        return Starlette(routes=[Route("/employees", receive, methods=["POST", "PUT"]),
                                 Route("/token", token, methods=["POST"])])  # fmt: skip


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    recorder = Endpoint()
    with BackgroundServer(recorder.app()) as server:
        yield recorder, server.url


def deliver(url: str, payload: Any = None, **settings: Any) -> Delivered:
    config = HrisSettings(url=f"{url}/employees", **settings)

    async def go() -> Delivered:
        async with httpx.AsyncClient() as client:
            return await HttpSink(config, client).deliver(payload or {"a": 1}, "key-1")

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ({"type": "none"}, "authorization", None),
        ({"type": "basic", "username": "u", "password": "p"}, "authorization",
         "Basic " + base64.b64encode(b"u:p").decode()),
        ({"type": "bearer", "token": "abc"}, "authorization", "Bearer abc"),
        ({"type": "api_key", "header_name": "X-Key", "api_key": "k1"}, "x-key", "k1"),
    ],
)  # fmt: skip
def test_static_auth_headers(endpoint: tuple[Endpoint, str], auth: Any, header: str,
                             value: str | None) -> None:  # fmt: skip
    recorder, url = endpoint
    deliver(url, auth=auth, headers={"X-Tenant": "acme"})
    sent = recorder.requests[0]["headers"]
    assert sent.get(header) == value
    assert sent["idempotency-key"] == "key-1" and sent["x-tenant"] == "acme"


def test_oauth2_token_is_fetched_and_refreshed_after_a_401(endpoint: tuple[Endpoint, str]) -> None:
    recorder, url = endpoint
    recorder.replies.append(JSONResponse({"message": "expired"}, status_code=401))
    auth = {"type": "oauth2", "token_url": f"{url}/token", "client_id": "c", "client_secret": "s"}
    result = deliver(url, auth=auth, id_path="data.id")
    assert result.record_id == "42"
    assert [r["headers"]["authorization"] for r in recorder.requests] == [
        "Bearer tok1",
        "Bearer tok2",
    ]


def test_record_id_from_location_header(endpoint: tuple[Endpoint, str]) -> None:
    _, url = endpoint
    assert deliver(url, id_from="location").record_id == "77"


def test_accepted_without_an_id_is_still_delivered(endpoint: tuple[Endpoint, str]) -> None:
    recorder, url = endpoint
    recorder.replies.append(Response(status_code=202))
    result = deliver(url, id_path="data.id")
    assert result == Delivered(None, 202)


def test_validation_refusal_is_permanent_with_the_message(endpoint: tuple[Endpoint, str]) -> None:
    recorder, url = endpoint
    body = {"errors": [{"field": "startDate", "message": "must be in the future"}]}
    recorder.replies.append(JSONResponse(body, status_code=422))
    with pytest.raises(PermanentError, match="HTTP 422: startDate: must be in the future"):
        deliver(url)
    assert len(recorder.requests) == 1


def test_server_errors_are_retried_with_the_same_key(endpoint: tuple[Endpoint, str]) -> None:
    recorder, url = endpoint
    recorder.replies += [JSONResponse({}, status_code=503), JSONResponse({}, status_code=502)]
    retry = {"attempts": 3, "backoff_initial_seconds": 0}
    assert deliver(url, retry=retry, id_path="data.id").record_id == "42"
    assert [r["headers"]["idempotency-key"] for r in recorder.requests] == ["key-1"] * 3
    recorder.replies += [JSONResponse({}, status_code=503)] * 3
    with pytest.raises(RetriableError):
        deliver(url, retry=retry)
