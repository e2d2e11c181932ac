"""A job's applications list read and checked (pure), and the PageUp client's paging of it
against the simulator (an envelope, page numbers)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Sims
from worker.remote.lanes import new_client
from worker.settings import DocumentIdPaths, SourceSettings
from worker.settings.applications import ApplicationIdPaths
from worker.sources.applications import ApplicationChecks, JobRef
from worker.sources.offer_document import DocumentChecks
from worker.sources.pageup import PageUpClient

CHECKS = ApplicationChecks(ApplicationIdPaths(), DocumentChecks(DocumentIdPaths()))


def entry(application: Any, applicant: Any = 600001, job: Any = 3001) -> dict[str, Any]:
    return {
        "ApplicationInfo": {"PUReferenceID": application},
        "ApplicantInfo": {"PUReferenceID": applicant},
        "JobInfo": {"PUReferenceID": job},
    }


def test_a_listing_keeps_good_entries_names_bad_ones_and_drops_repeats() -> None:
    pages: list[list[Any]] = [
        [entry(1), entry(2, applicant=None), "junk"],
        [entry(1), entry(3, job=9)],
    ]

    listing = CHECKS.listing(pages, JobRef("3001"))

    assert [ref.application_id for ref in listing.applications] == ["1"]
    assert listing.invalid == [
        "job 3001 page 1 entry 2: application 2: no applicant id at ApplicantInfo.PUReferenceID",
        "job 3001 page 1 entry 3: a JSON string, not an object",
        "job 3001 page 2 entry 2: application 3 is listed under job 9",
    ]
    assert not listing.complete


def test_an_external_job_is_not_compared_with_the_lJobID_in_its_entries() -> None:
    listing = CHECKS.listing([[entry(1, job=3001)]], JobRef("REQ-3001", external=True))

    assert listing.complete and listing.applications[0].applicant_id == "600001"
    assert JobRef("REQ-3001", external=True).key == "ext:REQ-3001"


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"PUReferenceID": 1, "ApplicantInfo": {"PUReferenceID": 600002}},
         "application 1 is listed for applicant 600001, its form names applicant 600002"),
        ([], "the application form is a JSON array of 0, not an object"),
        ({"PUReferenceID": 1, "Answers": ["Yes"]},
         "the application form's Answers holds something other than question objects"),
    ],
)  # fmt: skip
def test_a_form_about_another_applicant_or_of_a_bad_shape_is_named(form: Any, problem: str) -> None:
    (ref,) = CHECKS.listing([[entry(1)]], JobRef("3001")).applications

    found = CHECKS.form_problem(form, ref)

    assert found is not None and found.text == problem


@pytest.mark.parametrize("envelope", [False, True])
def test_every_page_of_a_jobs_applications_is_read(sims: Sims, envelope: bool) -> None:
    sims.pageup.applications.add_job(3001, 7)
    sims.pageup.faults.envelope = envelope
    data = sims.settings_data("sqlite://")["pageup"]
    data["paging"] = {"mode": "page_number", "page_size": 3, "read_ahead": 4}
    source = SourceSettings(**data)

    async def go() -> list[list[Any]]:
        client = new_client(4, None)
        try:
            return await PageUpClient(source, client).list_applications("3001")
        finally:
            await client.aclose()

    pages = asyncio.run(go())

    assert [len(page) for page in pages] == [3, 3, 1]
    # Pages 2 to 5 are asked together once page 1 is full; 6 once 2 is in, unless 3 (short:
    # the end) is in by then too. paging.read_ahead (4) asks at most 3 past the end.
    assert 3 + 2 <= sims.pageup.calls["list_applications"] <= 3 + 3
