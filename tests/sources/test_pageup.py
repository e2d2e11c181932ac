"""The PageUp client, replayed from cassettes recorded against the simulator.

Cassettes hold no secret (Authorization, client_secret and tokens are filtered) and no PII (the
simulator is loaded with placeholder people): see tests/test_cassettes.py. Delete a cassette to
record it again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import vcr

from tests.conftest import Sims
from worker.remote.lanes import new_client
from worker.settings import Settings
from worker.sources.pageup import PageUpClient

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
T = TypeVar("T")


def _scrub_token(response: dict[str, Any]) -> dict[str, Any]:
    body = response["body"].get("string", b"")
    if b"access_token" in body:
        data = json.loads(body)
        data["access_token"] = "REDACTED"
        response["body"]["string"] = json.dumps(data).encode()
    return response


recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="once",
    match_on=["method", "path", "query"],
    filter_headers=["authorization"],
    filter_post_data_parameters=["client_secret"],
    before_record_response=_scrub_token,
    decode_compressed_response=True,
)


def placeholder_people(sims: Sims) -> None:
    for number, sample in enumerate(sims.samples):
        sample.offer["Applicant"].update(
            FirstName=f"First{number}", LastName=f"Last{number}", Email=f"person{number}@invalid"
        )
        for answer in sample.onboarding["Answers"] + sample.application_form["Answers"]:
            answer["Answer"] = f"answer-{answer['QuestionID']}"


def with_client(settings: Settings, use: Callable[[PageUpClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with new_client(4) as client:
            return await use(PageUpClient(settings.sources["pageup"], client))

    return asyncio.run(go())


@pytest.fixture
def settings(sims: Sims, tmp_path: Path) -> Settings:
    placeholder_people(sims)
    return sims.settings(f"sqlite:///{tmp_path / 's.sqlite'}")


def test_lists_the_queue_and_fetches_an_offers_documents(settings: Settings) -> None:
    async def use(pageup: PageUpClient) -> Any:
        listing = await pageup.list_offers()
        first = listing.offers[0]
        return (
            listing,
            await pageup.get_offer(first.offer_id),
            await pageup.get_onboarding_form(first.offer_id),
            await pageup.get_application_form(str(first.application_id)),
        )

    with recorder.use_cassette("pageup_fetch.yaml"):
        listing, offer, onboarding, application = with_client(settings, use)

    assert len(listing.offers) == 12 and listing.invalid_entries == []
    assert listing.offers[0].offer_id == "900101" and listing.offers[0].application_id == "700101"
    assert offer["PUReferenceID"] == 900101 and offer["Applicant"]["FirstName"] == "First0"
    assert onboarding["Answers"][0]["QuestionID"] == 11
    assert application["PUReferenceID"] == 700101


def test_marks_processed_with_the_action_type(settings: Settings) -> None:
    source = settings.sources["pageup"].model_copy(update={"offer_action_type_id": 5})
    settings = settings.model_copy(update={"sources": {"pageup": source}})

    async def use(pageup: PageUpClient) -> int:
        await pageup.mark_processed("900101")
        return len((await pageup.list_offers()).offers)

    with recorder.use_cassette("pageup_mark.yaml") as cassette:
        remaining = with_client(settings, use)
        mark = next(r for r in cassette.requests if r.method == "POST" and "process" in r.path)

    assert remaining == 11
    assert "offerActionTypeId=5" in mark.uri


def test_a_401_refreshes_the_token_once_and_retries(sims: Sims, settings: Settings) -> None:
    async def use(pageup: PageUpClient) -> Any:
        await pageup.list_offers()
        sims.pageup.tokens.clear()  # revoked early, as a tenant's admin may do
        return await pageup.get_offer("900102")

    with recorder.use_cassette("pageup_token_refresh.yaml") as cassette:
        offer = with_client(settings, use)
        token_calls = [r for r in cassette.requests if r.path.endswith("/connect/token")]

    assert offer["PUReferenceID"] == 900102
    assert len(token_calls) == 2


def test_envelope_and_page_number_paging(sims: Sims, settings: Settings) -> None:
    sims.pageup.faults.envelope = True
    sims.pageup.faults.page_size = 5
    source = settings.sources["pageup"]
    paging = source.paging.model_copy(update={"mode": "page_number", "page_size": 5})
    source = source.model_copy(update={"paging": paging})
    settings = settings.model_copy(update={"sources": {"pageup": source}})

    with recorder.use_cassette("pageup_paging.yaml") as cassette:
        listing = with_client(settings, PageUpClient.list_offers)
        pages = [r.uri for r in cassette.requests if r.path.endswith("/offers")]

    assert [ref.offer_id for ref in listing.offers] == [str(900101 + i) for i in range(12)]
    assert len(pages) == 3 and "page=3" in pages[-1] and "pageSize=5" in pages[-1]


def test_entries_without_an_id_are_reported_not_dropped_silently(settings: Settings) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/connect/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        return httpx.Response(
            200, json=[{"PUReferenceID": 1}, {"Id": 2}, "junk", {"PUReferenceID": True}]
        )

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await PageUpClient(settings.sources["pageup"], client).list_offers()

    listing = asyncio.run(go())
    assert [ref.offer_id for ref in listing.offers] == ["1"]
    where = [where for where, _entry in listing.invalid_entries]
    assert where == ["page 1 entry 2", "page 1 entry 3", "page 1 entry 4"]
