"""The payroll functions field maps may call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worker.errors import ConfigError, MappingError
from worker.mapping.engine import apply_map
from worker.mapping.loader import load_field_map


def mapped(tmp_path: Path, expression: str, document: Any) -> Any:
    path = tmp_path / "map.yaml"
    path.write_text(f"fields:\n  out: {{expr: {expression!r}}}\n")
    return apply_map(load_field_map(path), document).payload.get("out")


@pytest.mark.parametrize(
    ("expression", "document", "expected"),
    [
        ("date_in(at, '%Y-%m-%d %H:%M', 'Australia/Sydney')", {"at": "2027-01-10T23:30:00Z"},
         "2027-01-11 10:30"),
        ("date_in(at, '%H:%M %z', 'Australia/Perth')", {"at": "2027-01-11T09:00:00"},
         "09:00 +0800"),
        ("split_name(n, 'first')", {"n": "Mia Thi Nguyen"}, "Mia"),
        ("split_name(n, 'middle')", {"n": "Mia Thi Nguyen"}, "Thi"),
        ("split_name(n, 'last')", {"n": "Mia Thi Nguyen"}, "Nguyen"),
        ("split_name(n, 'given')", {"n": "Mia Thi Nguyen"}, "Mia Thi"),
        ("split_name(n, 'last')", {"n": "Prince"}, None),
        ("title(n)", {"n": "  mia NGUYEN "}, "Mia Nguyen"),
        ("phone_e164(p, 'AU')", {"p": "0412 345 678"}, "+61412345678"),
        ("phone_e164(p, 'AU')", {"p": "+44 20 7946 0958"}, "+442079460958"),
        ("country_code(c)", {"c": "Australia"}, "AU"),
        ("country_code(c)", {"c": "GBR"}, "GB"),
        ("annual_to_hourly(a, h)", {"a": 85000, "h": 38}, 43.02),
        ("hourly_to_annual(r, h)", {"r": 43.02, "h": 38}, 85007.52),
        ("round(x, `1`)", {"x": 2.345}, 2.3),
        ("to_string(missing)", {}, None),
        ("xero_date(d)", {"d": "1990-01-01"}, "/Date(631152000000+0000)/"),
        ("xero_date(d)", {"d": "2027-01-18T09:30:00"}, "/Date(1800230400000+0000)/"),
        ("sap_date(d)", {"d": "1990-01-01"}, "/Date(631152000000)/"),
        ("sap_date(d)", {"d": "2027-01-18T23:30:00+10:00"}, "/Date(1800230400000)/"),
        ("sap_date(d)", {}, None),
    ],
)  # fmt: skip
def test_functions(tmp_path: Path, expression: str, document: Any, expected: Any) -> None:
    assert mapped(tmp_path, expression, document) == expected


@pytest.mark.parametrize(
    ("expression", "document", "problem"),
    [("phone_e164(p, 'AU')", {"p": "12"}, "not a valid phone number for region AU"),
     ("country_code(c)", {"c": "Atlantis"}, "not a country name or ISO code"),
     ("date_in(a, '%Y', 'Mars/Base')", {"a": "2027-01-01T00:00:00"}, "unknown time zone"),
     ("annual_to_hourly(a, h)", {"a": 1, "h": 0}, "hours per week must be above 0")],
)  # fmt: skip
def test_function_errors_name_the_problem_not_the_value(
    tmp_path: Path, expression: str, document: Any, problem: str
) -> None:
    with pytest.raises(MappingError, match=problem) as caught:
        mapped(tmp_path, expression, document)
    assert "Atlantis" not in str(caught.value)


def test_when_leaves_a_field_out(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "fields:\n"
        "  visa.number: {expr: offer.Visa, required: true, when: \"offer.Citizen == 'No'\"}\n"
        "  name: offer.Name\n"
    )
    field_map = load_field_map(path)
    citizen = apply_map(field_map, {"offer": {"Citizen": "Yes", "Name": "A"}}).payload
    assert citizen == {"name": "A"}
    with pytest.raises(MappingError, match=r"'visa\.number': required"):
        apply_map(field_map, {"offer": {"Citizen": "No", "Name": "A"}})


def test_an_array_body_wraps_the_record_and_a_bad_body_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("body: array\nfields:\n  Name: n\n")
    assert apply_map(load_field_map(path), {"n": "A"}).payload == [{"Name": "A"}]
    path.write_text("body: list\nfields:\n  Name: n\n")
    with pytest.raises(ConfigError, match="'body' is object or array, not 'list'"):
        load_field_map(path)


def test_requires_names_the_target_fields_a_map_must_fill(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "requires: [firstName, lastName, startDate]\n"
        "fields:\n"
        "  firstName: {expr: a, required: true}\n"
        "  lastName: b\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_field_map(path)
    assert caught.value.problems == [
        f"{path}:4:3: field 'lastName' is required by the target: "
        "mark it required: true or give it a default",
        f"{path}:1:1: the target requires 'startDate'; no field fills it",
    ]


def form(*answers: tuple[Any, str, Any]) -> dict[str, Any]:
    return {"form": {"Answers": [{"QuestionID": qid, "Question": text, "Answer": answer}
                                 for qid, text, answer in answers]}}  # fmt: skip


VERIFIED = {"Value": "123456782", "Verified": True}


@pytest.mark.parametrize("question", ["`11`", "'tax file number'"])
@pytest.mark.parametrize("value", [VERIFIED, ["123456782"]])
def test_answer_refuses_an_object_or_list_answer_without_quoting_it(
    tmp_path: Path, question: str, value: Any
) -> None:
    named = "question 11" if question == "`11`" else "question 'tax file number'"
    kind = "an object" if isinstance(value, dict) else "a list"
    with pytest.raises(MappingError) as caught:
        mapped(tmp_path, f"answer(form, {question})", form((11, "Tax file number", value)))
    (problem,) = caught.value.problems
    assert f"the answer to {named} is {kind}, not a single value" in problem
    assert "use answer_object()" in problem and "123456782" not in problem


def test_answer_object_takes_a_structured_answer_and_refuses_a_single_value(
    tmp_path: Path,
) -> None:
    document = form((11, "Tax file number", VERIFIED), (12, "Bank BSB", "062-000"))
    assert mapped(tmp_path, "answer_object(form, `11`).Value", document) == "123456782"
    assert mapped(tmp_path, "answer_object(form, `11`).Verified", document) is True
    assert mapped(tmp_path, "answer_object(form, `99`).Value", document) is None
    with pytest.raises(MappingError) as caught:
        mapped(tmp_path, "answer_object(form, 'Bank BSB').Value", document)
    assert "the answer to question 'Bank BSB' is text, not an object or a list" in str(caught.value)
    assert "062-000" not in str(caught.value)


@pytest.mark.parametrize(
    ("question", "named"),
    [("`11`", "question 11"), ("' TAX file number'", "question 'TAX file number'")],
)
def test_a_question_answered_twice_differently_is_refused_naming_only_the_question(
    tmp_path: Path, question: str, named: str
) -> None:
    document = form((11, "Tax file number", "123456782"), (12, "Bank BSB", "062-000"),
                    (11, "Tax file number", "876543210"))  # fmt: skip
    with pytest.raises(MappingError) as caught:
        mapped(tmp_path, f"answer(form, {question})", document)
    (problem,) = caught.value.problems
    assert problem.endswith(f"failed: {named} is answered 2 times, with different answers")
    assert "123456782" not in problem and "876543210" not in problem


def test_a_question_answered_twice_the_same_way_is_fine(tmp_path: Path) -> None:
    same = form((11, "Tax file number", VERIFIED), (11, "Tax file number", dict(VERIFIED)),
                (12, "Bank BSB", "062-000"), (12, "bank bsb", "062-000"))  # fmt: skip
    assert mapped(tmp_path, "answer_object(form, `11`).Value", same) == "123456782"
    assert mapped(tmp_path, "answer(form, 'Bank BSB')", same) == "062-000"
    assert mapped(tmp_path, "answer(form, `12`)", same) == "062-000"
    blank_and_given = form((12, "Bank BSB", None), (12, "Bank BSB", "062-000"))
    with pytest.raises(MappingError, match="question 12 is answered 2 times"):
        mapped(tmp_path, "answer(form, `12`)", blank_and_given)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [("join_present(' ', [a, o])", "join_present(): item 2 is an object, not a value"),
     ("join_present(' ', [l])", "join_present(): item 1 is a list, not a value"),
     ("lookup('kinds', o)", "lookup('kinds') takes a single value, not an object")],
)  # fmt: skip
def test_text_functions_refuse_a_structure_rather_than_write_its_python_text(
    tmp_path: Path, expression: str, problem: str
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(f"lookups:\n  kinds: {{a: A}}\nfields:\n  out: {expression!r}\n")
    document = {"a": "x", "o": {"Value": "secret-ish"}, "l": ["secret-ish"]}
    with pytest.raises(MappingError) as caught:
        apply_map(load_field_map(path), document)
    assert problem in str(caught.value) and "secret-ish" not in str(caught.value)
