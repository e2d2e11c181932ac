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
