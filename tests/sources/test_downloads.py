"""Downloading offer documents: the PageUp document endpoint and the storage listener, over
loopback (and replayed from a cassette holding placeholder bytes)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import vcr

from tests.conftest import Sims
from tests.sources.test_pageup import CASSETTES, _scrub_token
from worker.errors import DocumentRefused
from worker.remote.lanes import new_client
from worker.settings import DocumentSettings
from worker.simulators.storage import SimDocument
from worker.sources.downloads import Downloaded, Downloader, Wanted
from worker.sources.pageup import PageUpClient

T = TypeVar("T")
PLACEHOLDER = b"%PDF-1.4\n% placeholder bytes, not a document\n%%EOF\n"


def _scrub_links(response: dict[str, Any]) -> dict[str, Any]:
    """A download link's signature is a credential: it never reaches a cassette."""
    response = _scrub_token(response)
    body = response["body"].get("string", b"")
    response["body"]["string"] = SIGNATURE.sub(b"X-Sim-Signature=REDACTED", body)
    headers = response.get("headers", {})
    for name in [n for n in headers if n.lower() == "location"]:
        headers[name] = [SIGNATURE.sub(b"X-Sim-Signature=REDACTED", v.encode()).decode()
                         for v in headers[name]]  # fmt: skip
    return response


SIGNATURE = re.compile(rb"X-Sim-Signature=[^&\"\s]+")
documents_recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="once",
    match_on=["method", "path", "query"],
    filter_headers=["authorization"],
    filter_post_data_parameters=["client_secret"],
    filter_query_parameters=["X-Sim-Signature"],
    before_record_response=_scrub_links,
    decode_compressed_response=True,
)


def pdf(document_id: str, size: int | None = None) -> Wanted:
    return Wanted(document_id, "application/pdf", "pdf", size)


def with_downloader(
    sims: Sims, use: Callable[[PageUpClient, Downloader], Awaitable[T]], **limits: Any
) -> T:
    settings = sims.settings("sqlite://")
    documents = DocumentSettings(**{"allow_http": True, **limits})

    async def go() -> T:
        async with new_client(4) as api, new_client(4) as downloads:
            return await use(PageUpClient(settings.sources["pageup"], api),
                             Downloader(documents, downloads))  # fmt: skip

    return asyncio.run(go())


def fetch(wanted: Wanted) -> Callable[[PageUpClient, Downloader], Awaitable[tuple[int, str]]]:
    async def use(pageup: PageUpClient, downloader: Downloader) -> tuple[int, str]:
        async with downloader.fetch(pageup, wanted) as got:
            assert hashlib.sha256(got.file.read()).hexdigest() == got.sha256
            return got.size, got.sha256

    return use


def test_a_document_streams_through_a_redirect_without_any_credential(sims: Sims) -> None:
    document = sims.pageup.storage.documents["4000"]

    size, sha256 = with_downloader(sims, fetch(pdf("4000")))

    assert (size, sha256) == (len(document.content()),
                              hashlib.sha256(document.content()).hexdigest())  # fmt: skip
    requests = sims.pageup.storage.requests
    assert len(requests) == 2, "the signed link, then the blob it redirects to"
    assert not any("authorization" in headers or "cookie" in headers for headers in requests)


@pytest.mark.parametrize(
    ("limits", "wanted", "reason"),
    [
        ({"max_redirects": 0}, pdf("4000"), "redirected more than 0 times"),
        ({"allow_http": False}, pdf("4000"), "download link is http"),
        ({}, Wanted("4000", "image/png", "pdf", None), "extension pdf does not fit"),
        ({"max_bytes": 100}, pdf("4000"), "announces 0.6 KiB, over documents.max_bytes (0.1 KiB)"),
    ],
)
def test_limits_refuse_the_document_naming_it(
    sims: Sims, limits: dict[str, Any], wanted: Wanted, reason: str
) -> None:
    with pytest.raises(DocumentRefused, match=re.escape(reason)) as caught:
        with_downloader(sims, fetch(wanted), **limits)
    assert caught.value.record_ids == ("4000",) and str(caught.value).startswith("document 4000")


def test_bytes_past_the_limit_stop_the_download_even_without_a_length(sims: Sims) -> None:
    sims.pageup.storage.documents["4000"] = SimDocument("4000", large_bytes=300_000)

    async def use(pageup: PageUpClient, downloader: Downloader) -> Any:
        downloader._client = httpx.AsyncClient(transport=_NoLength(downloader._client))
        async with downloader.fetch(pageup, pdf("4000")):
            pass

    with pytest.raises(DocumentRefused, match=r"larger than documents\.max_bytes \(195\.3 KiB\)"):
        with_downloader(sims, use, max_bytes=200_000)


def test_a_download_cut_short_is_fetched_again_into_an_emptied_file(sims: Sims) -> None:
    # Small batches for the hashing thread: many of them, several behind the download.
    size = 700_001
    document = sims.pageup.storage.documents["4000"] = SimDocument("4000", large_bytes=size)
    sims.pageup.storage.cut_after["4000"] = size // 2
    retry = {"attempts": 2, "backoff_initial_seconds": 0, "backoff_max_seconds": 0.01}

    got = with_downloader(sims, fetch(pdf("4000")), chunk_bytes=4096, retry=retry)

    content = document.content()
    assert got == (size, hashlib.sha256(content).hexdigest())  # the first half not kept twice
    assert sims.pageup.storage.served["4000"] == 1


def test_nothing_is_left_on_disk_after_success_failure_or_cancel(
    sims: Sims, tmp_path: Path
) -> None:
    sims.pageup.storage.documents["4002"] = SimDocument("4002", body=b"GIF89a not a pdf")
    sims.pageup.storage.documents["4004"] = SimDocument("4004", large_bytes=2_000_000)
    held: list[Downloaded] = []

    async def use(pageup: PageUpClient, downloader: Downloader) -> None:
        async with downloader.fetch(pageup, pdf("4000")) as got:
            held.append(got)
            assert os.listdir(tmp_path) == [], "the temporary file has no name"
        with pytest.raises(DocumentRefused, match="not a application/pdf"):
            async with downloader.fetch(pageup, pdf("4002")):
                pass
        task = asyncio.create_task(_hold(downloader, pageup))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with_downloader(sims, use, temp_dir=tmp_path)
    assert held[0].file.closed and os.listdir(tmp_path) == []


async def _hold(downloader: Downloader, pageup: PageUpClient) -> None:
    async with downloader.fetch(pageup, pdf("4004")):
        await asyncio.sleep(30)


class _NoLength(httpx.AsyncBaseTransport):
    """Drops Content-Length from answers, as a chunked storage answer would have none."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._transport = client._transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"]
        return httpx.Response(response.status_code, headers=headers, stream=response.stream)


def test_the_document_endpoints_replay_from_a_cassette_of_placeholder_bytes(
    sims: Sims,
) -> None:
    sims.pageup.storage.documents["4000"] = SimDocument("4000", body=PLACEHOLDER)

    with documents_recorder.use_cassette("pageup_documents.yaml") as cassette:
        size, sha256 = with_downloader(sims, fetch(pdf("4000")))
        paths = [r.path for r in cassette.requests]

    assert (size, sha256) == (len(PLACEHOLDER), hashlib.sha256(PLACEHOLDER).hexdigest())
    assert paths[-3].endswith("/document/4000") and paths[-1].startswith("/blob/")


def test_a_settings_file_can_name_the_document_endpoint(sims: Sims) -> None:
    settings = sims.settings("sqlite://", pageup={
        "paths": {"document": "documents/{document_id}/download"},
        "document_url_path": "Link.Href",
    })  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/connect/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        assert request.url.path.endswith("/documents/7/download")
        return httpx.Response(200, json={"Link": {"Href": "https://files.example/x?sig=1"}})

    async def go() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await PageUpClient(settings.sources["pageup"], client).document_url("7")

    assert asyncio.run(go()) == "https://files.example/x?sig=1"
