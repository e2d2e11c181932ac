"""Each fetched document must be about the record asked for, and have the shape maps read."""

from __future__ import annotations

from typing import Any

import pytest

from worker.settings import DocumentIdPaths
from worker.sources.offer_document import DocumentChecks, describe, form_shape_problem

CHECKS = DocumentChecks(DocumentIdPaths())
OFFER = {"PUReferenceID": 900101, "Applicant": {"PUReferenceID": 500101}}


def test_the_offer_must_name_the_offer_asked_for() -> None:
    assert CHECKS.offer_problem(OFFER, "900101") is None
    wrong = CHECKS.offer_problem({**OFFER, "PUReferenceID": 900102}, "900101")
    assert wrong is not None
    assert wrong.text == "asked for offer 900101, PageUp answered with offer 900102's document"
    assert wrong.ids == ("900101", "900102")
    unnamed = CHECKS.offer_problem({"Status": "Accepted"}, "900101")
    assert unnamed is not None and "does not name its offer id (PUReferenceID)" in unnamed.text


@pytest.mark.parametrize(
    ("document", "said"),
    [(None, "JSON null"), ([OFFER], "a JSON array of 1"), ("x", "a JSON string")],
)
def test_an_offer_that_is_not_an_object_says_what_it_was(document: Any, said: str) -> None:
    problem = CHECKS.offer_problem(document, "900101")
    assert problem is not None and problem.text == f"the offer document is {said}, not an object"


def test_the_new_starter_form_is_checked_when_it_names_an_offer() -> None:
    assert CHECKS.onboarding_problem({"Answers": []}, "900101") is None
    assert CHECKS.onboarding_problem({"PUReferenceID": 900101, "Answers": []}, "900101") is None
    other = CHECKS.onboarding_problem({"PUReferenceID": "900199", "Answers": []}, "900101")
    assert other is not None and other.ids == ("900101", "900199")


def test_the_application_form_must_be_the_application_and_applicant_asked_for() -> None:
    form = {"PUReferenceID": 700101, "ApplicantInfo": {"PUReferenceID": 500101}, "Answers": []}
    assert CHECKS.application_problem(form, "700101", OFFER) is None
    other = CHECKS.application_problem({**form, "PUReferenceID": 700555}, "700101", OFFER)
    assert other is not None and "got application 700555's" in other.text
    someone_else = {**form, "ApplicantInfo": {"PUReferenceID": 500999}}
    problem = CHECKS.application_problem(someone_else, "700101", OFFER)
    assert problem is not None
    assert problem.text == (
        "the offer is about applicant 500101, its application form about applicant 500999"
    )
    # Only one of the two names an applicant: nothing to compare.
    assert CHECKS.application_problem({"Answers": []}, "700101", OFFER) is None


@pytest.mark.parametrize(
    ("form", "said"),
    [
        (None, "the new-starter form is JSON null, not an object"),
        ([], "the new-starter form is a JSON array of 0, not an object"),
        ({"Answers": {"QuestionID": 11}}, "the new-starter form's Answers is a JSON object"),
        ({"Answers": ["123456782"]}, "holds something other than question objects"),
    ],
)
def test_a_form_of_the_wrong_shape_is_named(form: Any, said: str) -> None:
    problem = form_shape_problem("new-starter form", form)
    assert problem is not None and said in problem.text
    assert "123456782" not in problem.text


def test_describe_never_shows_a_value() -> None:
    assert describe("123456782") == "a JSON string"
    assert describe(123456782) == "a JSON number"
    assert describe({"TFN": "123456782"}) == "a JSON object"
