"""Evaluating field maps: nested targets, defaults, required, types, custom functions."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from worker.errors import ConfigError, MappingError
from worker.mapping.engine import apply_map
from worker.mapping.loader import FieldMap, load_field_map
from worker.simulators.sample import make_offers

MAP = """
lookups:
  kinds: {"Full Time": FT}
fields:
  id: {expr: to_string(offer.PUReferenceID), required: true}
  name.full: {expr: "join_present(' ', [offer.First, offer.Middle, offer.Last])", pii: true}
  name.upper: upper(offer.Last)
  start: "date(offer.StartDate, '%d/%m/%Y')"
  kind: {expr: "lookup('kinds', offer.Kind)", default: OTHER}
  tfn: {expr: "answer(onboarding, `11`)", required: true, pii: true}
  bsb: "answer(onboarding, ' bank bsb ')"
  hours: {expr: offer.Hours, type: number}
  fixed: {const: {source: pageup, tags: [a, b]}}
"""


@pytest.fixture
def field_map(tmp_path: Path) -> FieldMap:
    path = tmp_path / "map.yaml"
    path.write_text(MAP)
    return load_field_map(path)


def document(**offer: Any) -> dict[str, Any]:
    base = {"PUReferenceID": 9, "First": "Mia", "Last": "Nguyen", "Kind": "Full Time",
            "StartDate": "2027-01-11T00:00:00", "Hours": 38}  # fmt: skip
    answers = [{"QuestionID": 11, "Question": "Tax file number", "Answer": "123456782"},
               {"QuestionID": 12, "Question": "Bank BSB", "Answer": "062-000"}]  # fmt: skip
    return {"offer": base | offer, "onboarding": {"Answers": answers}}


def test_maps_a_document_into_nested_payload(field_map: FieldMap) -> None:
    record = apply_map(field_map, document())
    assert record.payload == {
        "id": "9",
        "name": {"full": "Mia Nguyen", "upper": "NGUYEN"},
        "start": "11/01/2027",
        "kind": "FT",
        "tfn": "123456782",
        "bsb": "062-000",
        "hours": 38,
        "fixed": {"source": "pageup", "tags": ["a", "b"]},
    }
    assert set(record.sensitive_values) == {"Mia Nguyen", "123456782"}


def test_to_string_keeps_a_missing_value_missing(field_map: FieldMap) -> None:
    doc = document()
    del doc["offer"]["PUReferenceID"]
    with pytest.raises(MappingError, match="'id': required"):
        apply_map(field_map, doc)


def test_default_applies_to_unknown_lookup_value(field_map: FieldMap) -> None:
    assert apply_map(field_map, document(Kind="Casual")).payload["kind"] == "OTHER"


def test_every_failing_field_is_reported(field_map: FieldMap) -> None:
    doc = document(StartDate="11/01/2027", Hours="38")
    doc["onboarding"]["Answers"] = []
    with pytest.raises(MappingError) as caught:
        apply_map(field_map, doc)
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("'tfn': required" in p for p in problems)
    assert any("'start'" in p and "not an ISO 8601 date" in p for p in problems)
    assert any("'hours': expected number" in p for p in problems)
    assert not any("11/01/2027" in p for p in problems), "values stay out of error text"


def test_answer_by_question_text_ignores_case_and_spaces(field_map: FieldMap) -> None:
    assert apply_map(field_map, document()).payload["bsb"] == "062-000"


def test_shipped_map_on_sample_offers() -> None:
    field_map = load_field_map(REPO / "mappings" / "example_hris.yaml")
    sample = make_offers(1)[0]
    doc = {
        "offer": sample.offer,
        "onboarding": sample.onboarding,
        "application": sample.application_form,
    }
    payload = apply_map(field_map, doc).payload
    assert payload["externalId"] == str(sample.offer_id)
    assert payload["startDate"] == sample.offer["StartDate"][:10]
    assert payload["tax"]["taxFileNumber"] == sample.onboarding["Answers"][0]["Answer"]
    assert payload["location"] == {"city": sample.offer["Location"]["Name"],
                                   "state": sample.offer["Location"]["State"]}  # fmt: skip
    json.dumps(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


SHIPPED = sorted((REPO / "mappings").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
@settings(max_examples=120, deadline=None, derandomize=True)
@given(offer=json_values, onboarding=json_values)
def test_any_json_maps_or_fails_with_a_mapping_error(
    path: Path, offer: Any, onboarding: Any
) -> None:
    field_map = load_field_map(path, choosing=True)  # an applications map has a `when:`
    document = {"offer": offer, "onboarding": onboarding, "application": offer,
                "applicant": onboarding, "application_form": onboarding, "job": offer}  # fmt: skip
    with contextlib.suppress(MappingError):
        apply_map(field_map, document)


UNTYPED = """
fields:
  city: offer.City
  tags: offer.Tags
  address: {expr: offer.Address, type: object}
  accounts: {expr: "offer.Accounts[].{bsb: Bsb}", type: array}
  fixed: {const: {source: pageup}}
  fallback: {expr: offer.Missing, default: [none]}
"""


@pytest.fixture
def untyped(tmp_path: Path) -> FieldMap:
    path = tmp_path / "untyped.yaml"
    path.write_text(UNTYPED)
    return load_field_map(path)


def test_a_field_without_type_refuses_a_structure_naming_field_and_expression(
    untyped: FieldMap,
) -> None:
    offer = {"City": {"Name": "Sydney 2000"}, "Tags": ["PII-tag"], "Address": {}, "Accounts": []}
    with pytest.raises(MappingError) as caught:
        apply_map(untyped, {"offer": offer})
    assert caught.value.problems == [
        "field 'city': 'offer.City' gave an object where a single value is expected "
        "(declare type: object if the target takes one)",
        "field 'tags': 'offer.Tags' gave an array where a single value is expected "
        "(declare type: array if the target takes one)",
    ]


def test_declared_structures_and_the_maps_own_constants_go_through(untyped: FieldMap) -> None:
    offer = {"City": "Sydney", "Tags": "a", "Address": {"Line": "1 George St"},
             "Accounts": [{"Bsb": "062-000"}, {"Bsb": "062-001"}]}  # fmt: skip
    assert apply_map(untyped, {"offer": offer}).payload == {
        "city": "Sydney",
        "tags": "a",
        "address": {"Line": "1 George St"},
        "accounts": [{"bsb": "062-000"}, {"bsb": "062-001"}],
        "fixed": {"source": "pageup"},
        "fallback": ["none"],
    }


def test_an_expression_that_can_only_give_a_structure_must_declare_it(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "fields:\n"
        "  accounts: 'offer.Accounts[].Bsb'\n"
        "  merged: 'merge(offer.A, offer.B)'\n"
        "  answer: {expr: 'answer(onboarding, `11`)', type: object}\n"
        "  whole: {expr: 'answer_object(onboarding, `11`)'}\n"
        "  part: 'answer_object(onboarding, `11`).Value'\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_field_map(path)
    assert caught.value.problems == [
        f"{path}:2:3: field 'accounts': it gives an array, and a field without 'type' takes a "
        "single value: declare type: array if the target takes one",
        f"{path}:3:3: field 'merged': it gives an object, and a field without 'type' takes a "
        "single value: declare type: object if the target takes one",
        f"{path}:4:12: field 'answer': declared type object, but answer() gives boolean or "
        "number or string",
        f"{path}:5:11: field 'whole': it gives an array or an object, and a field without "
        "'type' takes a single value: declare type: array if the target takes one",
    ]


def test_a_verified_answer_object_never_reaches_the_payload() -> None:
    field_map = load_field_map(REPO / "mappings" / "example_hris.yaml")
    sample = make_offers(1)[0]
    onboarding = json.loads(json.dumps(sample.onboarding))
    tfn = onboarding["Answers"][0]
    tfn["Answer"] = {"Value": tfn["Answer"], "Verified": True}
    doc = {"offer": sample.offer, "onboarding": onboarding, "application": sample.application_form}
    with pytest.raises(MappingError) as caught:
        apply_map(field_map, doc)
    (problem,) = caught.value.problems
    assert problem.startswith("field 'tax.taxFileNumber': 'answer(onboarding, `11`)' failed: "
                              "the answer to question 11 is an object")  # fmt: skip
    assert tfn["Answer"]["Value"] not in problem
