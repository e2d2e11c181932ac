"""One HTTP exchange: status classification, Retry-After, error bodies, bad bodies."""

from __future__ import annotations

import asyncio
import email.utils
from typing import Any

import httpx
import pytest

from worker.errors import PermanentError, RateLimitedError, RetriableError
from worker.redact import scrub_text
from worker.remote.http import (
    MAX_BODY_BYTES,
    Reply,
    error_detail,
    exchange,
    parse_retry_after,
    raise_for_status,
)


def reply(
    status: int, body: bytes = b"", content_type: str = "application/json", retry_after: str = ""
) -> Reply:
    headers = {"content-type": content_type} | ({"retry-after": retry_after} if retry_after else {})
    return Reply(status, httpx.Headers(headers), body, "pageup", "s")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12.0), ("0", None), ("-3", None), ("abc", None), (None, None), ("99999", 60.0)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, cap=60.0) == expected


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(when, cap=60.0, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after(when, cap=60.0, now=1_000_100.0) is None


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, RetriableError), (503, RetriableError), (408, RetriableError),
     (429, RateLimitedError), (400, PermanentError), (404, PermanentError), (422, PermanentError)],
)  # fmt: skip
def test_status_classification(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        raise_for_status(reply(status), success=frozenset({200}), retry_after_cap=60)
    assert type(caught.value) is error
    raise_for_status(reply(200), success=frozenset({200}), retry_after_cap=60)


def test_429_carries_retry_after() -> None:
    with pytest.raises(RateLimitedError) as caught:
        raise_for_status(reply(429, retry_after="7"), success=frozenset(), retry_after_cap=60)
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'[{"message": "Offer not found", "field": "offerId"}]', "offerId: Offer not found"),
        (b'{"Message": "An error has occurred."}', "An error has occurred."),
        (b'{"errors": [{"field": "email", "message": "mia@example.org is taken"}]}',
         "email: [email] is taken"),
        (b'{"detail": "TFN 123 456 782 invalid"}', "TFN [number] invalid"),
        (b'{"error": {"code": "COE_X", "message": {"lang": "en-US", "value": "Bad key"}}}',
         "Bad key"),
        (b'{"message": "The request is invalid.", "modelState": {"employee.Surname": '
         b'["The Surname field is required."]}}',
         "The request is invalid.; employee.Surname: The Surname field is required."),
        (b'{"Message": "A validation exception occurred", "Employees": [{"ValidationErrors":'
         b' [{"Message": "The Last Name is required."}]}]}',
         "A validation exception occurred; The Last Name is required."),
        (b'{"key": "work.site", "error": "no item with id 9"}', "no item with id 9"),
    ],
    ids=["pageup-list", "pageup-message", "errors", "detail", "odata", "modelstate",
         "xero-validation", "hibob"],
)  # fmt: skip
def test_error_detail_in_every_shape_scrubbed(body: bytes, expected: str) -> None:
    assert error_detail(reply(400, body)) == expected


def test_an_error_header_is_read_when_the_body_is_empty() -> None:
    bare = Reply(400, httpx.Headers({"X-BambooHR-Error-Message": "Invalid value for field x"}),
                 b"", "hris", "post")  # fmt: skip
    assert error_detail(bare) == "Invalid value for field x"
    assert error_detail(reply(400)) == ""


def test_html_error_page_is_described_not_echoed() -> None:
    page = reply(502, b"<html><body>Bad gateway</body></html>", "text/html")
    assert error_detail(page) == "non-JSON text/html body"
    with pytest.raises(PermanentError, match="text/html body, expected JSON"):
        page.json()


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [(b"{not json", "application/json", "not valid JSON"),
     (b'{"a": "\xff\xfe"}', "application/json", "not valid UTF-8"),
     (b"{}", "text/plain", "text/plain body, expected JSON")],
)  # fmt: skip
def test_bad_bodies_are_permanent_errors(body: bytes, content_type: str, problem: str) -> None:
    with pytest.raises(PermanentError, match=problem):
        reply(200, body, content_type).json()


def run_exchange(handler: Any) -> Reply:
    async def go() -> Reply:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await exchange(
                client, "GET", "http://sim/x", system="hris", stage="post", route="/x", timeout=1
            )

    return asyncio.run(go())


def test_huge_bodies_are_refused() -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    with pytest.raises(PermanentError) as caught:
        run_exchange(lambda request: httpx.Response(200, content=big))
    assert str(caught.value) == "HTTP 200 body larger than 8 MiB"
    assert scrub_text(str(caught.value)) == str(caught.value)  # the size survives redaction


def test_transport_failures_are_retriable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    # Without a cause in the chain (a mock raises bare), the exception's type is all there is.
    with pytest.raises(RetriableError, match=r"^cannot connect to sim:80: ConnectError$"):
        run_exchange(refuse)
    with pytest.raises(RetriableError, match=r"^timed out after 1s waiting for sim:80 to answer$"):
        run_exchange(slow)
