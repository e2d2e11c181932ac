"""The request bodies the worker really sends, checked against each vendor's published schema.

Each shipped vendor map runs a sync against the simulator behaving like that vendor; every JSON
body the simulator received is then validated against the schema vendored beside this file
(sources, versions and cuts in README.md). The simulators' own rules are looser or different
(they are written from the vendors' prose): this test holds the bodies to the vendors' specs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import Sims
from tests.pipelines.test_offers import run_sync

HERE = Path(__file__).resolve().parent
SIX = {"offers": 6}


def _json(name: str) -> Any:
    return json.loads((HERE / name).read_text())


def xero_validator() -> Draft202012Validator:
    """OpenAPI 3.0 schemas are JSON Schema for what matters here (types, enums, required)."""
    spec = yaml.safe_load((HERE / "xero-payroll-au.employees.yaml").read_text())
    registry: Registry[Any] = Registry().with_resource(
        "xero.yaml", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    body = {
        "$ref": "xero.yaml#/paths/~1Employees/post/requestBody/content/application~1json/schema"
    }
    return Draft202012Validator(body, registry=registry)


def bamboohr_validator() -> Draft202012Validator:
    """The request body of ``create-employee`` (OpenAPI 3.1: its schemas are JSON Schema 2020-12).
    ``format: date`` is asserted too: BambooHR documents hireDate as YYYY-MM-DD."""
    spec = yaml.safe_load((HERE / "bamboohr-public.create-employee.yaml").read_text())
    registry: Registry[Any] = Registry().with_resource(
        "bamboohr.yaml", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    body = {
        "$ref": "bamboohr.yaml#/paths/~1api~1v1~1employees/post/requestBody/content"
        "/application~1json/schema"
    }
    return Draft202012Validator(
        body, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def read_only(schema: Any, path: str = "") -> set[str]:
    """Properties the spec marks readOnly: a request must not send them."""
    found: set[str] = set()
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("readOnly"):
            found.add(path + name)
    return found


def successfactors_validator(entity: str) -> Draft202012Validator:
    """SAP's entity type, plus what OData itself enforces on an upsert: the key properties
    (non-nullable in the metadata) must be given, and an unknown property refuses the call."""
    definition = copy.deepcopy(_json("successfactors-ec-entities.json")["definitions"][entity])
    properties = definition["properties"]
    definition["required"] = sorted(
        name for name, prop in properties.items() if "null" not in prop.get("type", [])
    )
    properties["__metadata"] = {
        "type": "object",
        "required": ["uri"],
        "properties": {"uri": {"type": "string"}, "type": {"const": entity}},
        "additionalProperties": False,
    }
    definition["additionalProperties"] = False
    return Draft202012Validator(definition)


def plain(name: str) -> Callable[[str, Any], Draft202012Validator]:
    validator = Draft202012Validator(_json(name))
    return lambda _path, _body: validator


XERO = xero_validator()
BAMBOOHR = bamboohr_validator()
NOTHING = Draft202012Validator(False)  # a JSON body on a path no vendored schema covers
TARGETS: dict[str, Callable[[str, Any], Draft202012Validator]] = {
    "bamboohr": lambda path, _body: BAMBOOHR if path.endswith("/v1/employees") else NOTHING,
    "hibob": plain("hibob-create-employee-request.schema.json"),
    "xero": lambda _path, _body: XERO,
    "successfactors": lambda _path, body: successfactors_validator(
        "SFOData." + body["__metadata"]["uri"]
    ),
    "employmenthero": plain("employmenthero-au-unstructured-employee.schema.json"),
}


def sent(sims: Sims, db_url: str) -> list[tuple[str, str, Any]]:
    report = run_sync(sims.settings(db_url))
    assert report.ok, report.failed_offers
    bodies = [(m, p, b) for m, p, b in sims.hris.received if m in ("POST", "PUT")]
    assert bodies, "the sync sent nothing"
    return bodies


@pytest.mark.parametrize(
    "sims", [{**SIX, "target": target} for target in TARGETS], indirect=True, ids=list(TARGETS)
)
def test_every_body_sent_is_valid_against_the_vendor_schema(sims: Sims, db_url: str) -> None:
    problems = []
    for method, path, body in sent(sims, db_url):
        validator = TARGETS[sims.target](path, body)
        problems += [
            f"{method} {path}: {'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in validator.iter_errors(body)
        ]
    assert problems == []


@pytest.mark.parametrize("sims", [{**SIX, "target": "xero"}], indirect=True)
def test_xero_bodies_carry_no_read_only_property(sims: Sims, db_url: str) -> None:
    spec = yaml.safe_load((HERE / "xero-payroll-au.employees.yaml").read_text())
    schemas = spec["components"]["schemas"]
    forbidden = read_only(schemas["Employee"])
    assert forbidden == {"UpdatedDateUTC"}
    for _, _, body in sent(sims, db_url):
        for employee in body:
            assert not forbidden & set(employee)


def test_the_validators_refuse_what_the_specs_forbid() -> None:
    """The checks above could pass by accepting anything: show each one refusing."""
    assert not XERO.is_valid([{"FirstName": "A", "LastName": "B"}])  # DateOfBirth required
    assert not XERO.is_valid(
        [
            {
                "FirstName": "A",
                "LastName": "B",
                "DateOfBirth": "x",
                "HomeAddress": {"AddressLine1": "1", "Region": "Victoria"},
            }
        ]
    )
    person = successfactors_validator("SFOData.PerPerson")
    assert person.is_valid({"__metadata": {"uri": "PerPerson"}, "personIdExternal": "P1"})
    assert not person.is_valid(
        {"__metadata": {"uri": "PerPerson"}, "personIdExternal": "P1", "firstName": "A"}
    )  # a PerPersonal property, not PerPerson's
    assert not person.is_valid({"__metadata": {"uri": "PerPerson"}, "personIdExternal": "x" * 33})
    job = successfactors_validator("SFOData.EmpJob")
    assert not job.is_valid({"__metadata": {"uri": "EmpJob"}, "userId": "U", "startDate": "d"})
    keypay = TARGETS["employmenthero"]("", {})
    assert not keypay.is_valid({"bankAccount1_Bsb": "000-000"})  # misspelt: BSB
    assert not keypay.is_valid({"australianResident": "Yes"})
    assert not TARGETS["hibob"]("", {}).is_valid({"firstName": "A", "surname": "B"})
    # BambooHR: other fields are allowed with any JSON value, the six it lists are typed.
    assert BAMBOOHR.is_valid({"firstName": "A", "lastName": "B", "hireDate": "2026-12-03",
                              "payRate": "1 AUD", "anyCustomField": 7})  # fmt: skip
    assert not BAMBOOHR.is_valid({"firstName": 7, "lastName": "B"})
    assert not BAMBOOHR.is_valid({"firstName": "A", "lastName": "B", "workEmail": ["a@b.c"]})
    assert not BAMBOOHR.is_valid({"firstName": "A"})  # lastName required
    assert not BAMBOOHR.is_valid({"firstName": "A", "lastName": "B", "hireDate": "03/12/2026"})
