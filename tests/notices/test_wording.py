"""Failure facts turned into sentences an HR admin acts on."""

from __future__ import annotations

import pytest

from worker.notices.wording import halt_wording, job_wording, offer_wording, push_wording


def offer(
    message: str, *, stage: str = "map", kind: str = "mapping", status: int | None = None,
    system: str | None = None, target: str | None = "payroll_au",
) -> tuple[str, str]:  # fmt: skip
    wording = offer_wording(stage=stage, kind=kind, message=message, status=status,
                            system=system, target=target)  # fmt: skip
    return wording.problem, wording.action


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("field 'tax.taxFileNumber': required, but \"answer(onboarding, `11`)\" gave no value",
         "the new-starter form has no tax file number"),
        ("field 'mobile': required, but \"answer(application, 'Mobile phone')\" gave no value",
         "the application form has no mobile phone"),
        ("step 'employee': field 'costCentre': required, but 'offer.CostCentre.Code' gave no "
         "value", "the offer has no cost centre"),
        ("field 'bank.accountNumber': \"answer(onboarding, `13`)\" failed: question 13 is "
         "answered 2 times, with different answers",
         "the account number in the new-starter form cannot be used: question 13 is answered "
         "2 times, with different answers"),
    ],
)  # fmt: skip
def test_a_missing_or_unusable_answer_names_the_form_and_the_question(
    message: str, problem: str
) -> None:
    said, action = offer(message)
    assert said == problem
    assert action.startswith("Ask the new starter or HR to complete")
    assert "hirebridge retry" in action


def test_several_missing_answers_are_one_sentence_each() -> None:
    said, action = offer(
        "field 'tax.taxFileNumber': required, but \"answer(onboarding, `11`)\" gave no value; "
        "field 'jobTitle': required, but 'offer.PositionTitle' gave no value"
    )
    assert said == "the new-starter form has no tax file number; the offer has no job title"
    assert "the new-starter form or the offer" in action


def test_a_refusal_from_the_payroll_quotes_its_scrubbed_message() -> None:
    said, action = offer("HTTP 422: costCentre: CC-999 is not a cost centre", stage="post",
                         kind="permanent", status=422, system="payroll_au")  # fmt: skip
    refused = "the payroll/HRIS “payroll_au” refused this hire"
    assert said == f"{refused}: costCentre: CC-999 is not a cost centre"
    assert "correct the field map" in action


def test_refused_credentials_and_an_outage_of_the_payroll_say_so() -> None:
    said, action = offer("HTTP 401: not authorised", stage="post", kind="permanent",
                         status=401, system="payroll_au")  # fmt: skip
    assert "refused hirebridge's credentials (HTTP 401)" in said and "renews" in action
    said, action = offer("HTTP 503", stage="post", kind="retriable", status=503,
                         system="payroll_au")  # fmt: skip
    assert "did not accept this hire after several tries: HTTP 503" in said and "is up" in action


def test_pageup_failures_say_what_pageup_did() -> None:
    said, action = offer("Offer not found", stage="fetch_offer", kind="permanent", status=404,
                         system="pageup", target=None)  # fmt: skip
    assert "PageUp has no such document for this offer (HTTP 404" in said
    assert "hirebridge skip" in action
    wrong = "asked for offer 1, PageUp answered with offer 2's document"
    said, _ = offer(wrong, stage="fetch_offer", kind="permanent", system="pageup", target=None)
    assert said.startswith("PageUp sent something hirebridge cannot use")
    said, action = offer("HTTP 409: locked", stage="mark_processed", kind="permanent",
                         status=409, system="pageup", target=None)  # fmt: skip
    assert said.startswith("the hire reached its payroll, but PageUp did not take the mark")
    assert "Nothing will be sent twice" in action


def test_no_route_and_a_removed_target() -> None:
    said, _ = offer("no route: no condition held (au: offer.Country == 'AU')", stage="route")
    assert said.startswith("no route sends this hire to a payroll (no condition held")
    said, action = offer("target 'old' is no longer configured: add it back")
    assert said.startswith("target 'old' is no longer configured") and "reroute" in action


def test_pushes_jobs_and_halts() -> None:
    assert push_wording(source="apna", item_id=7, message="HTTP 422: bad").problem.startswith(
        "An Apna candidate lead (inbox item 7) could not be delivered"
    )
    assert "inbox-retry 7" in push_wording(source="pop", item_id=7, message="x").action
    assert "jobs retry --all-parked" in job_wording(source_id="J-1", message="x").action
    credentials = halt_wording(source="au_live", cause="credentials", reason="r")
    assert "refused hirebridge's credentials for au_live" in credentials.problem
    assert "sources.au_live.client_secret" in credentials.action
    limit = halt_wording(source="au_live", cause="rate_limit", reason="r")
    assert "daily call limit" in limit.problem and limit.action.startswith("Nothing to do")
    down = halt_wording(source="au_live", cause="unavailable", reason="HTTP 503")
    assert "could not be read for au_live" in down.problem and "(HTTP 503)" in down.problem
