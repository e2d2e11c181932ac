"""Each HRIS simulator flavour refuses what its vendor refuses, in the vendor's error shape."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from starlette.testclient import TestClient

from worker.simulators.hris import HrisState, build_app
from worker.simulators.hris.employmenthero import BASE


def client(flavour: str, **state: Any) -> tuple[TestClient, HrisState]:
    sim = HrisState(flavour=flavour, **state)
    return TestClient(build_app(sim)), sim


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BAMBOO = basic("hris-sim-key", "x")
BOB = basic("hris-sim-user", "hris-sim-key")
SAP = basic("hris-sim-user", "hris-sim-key")
EH = basic("hris-sim-key", "x")
PERSON = {"__metadata": {"uri": "PerPerson"}, "personIdExternal": "PU1"}


def test_bamboohr_answers_errors_in_its_header_with_an_empty_body() -> None:
    http, sim = client("bamboohr")
    path = sim.spec.path
    reply = http.post(path, json={"firstName": "A", "lastName": "B", "department": "Nope"},
                      headers=BAMBOO)  # fmt: skip
    assert reply.status_code == 400 and reply.content == b""
    assert reply.headers["X-BambooHR-Error-Message"] == "Invalid value for field department"
    missing = http.post(path, json={"firstName": "A", "hireDate": "18/01/2027"}, headers=BAMBOO)
    assert missing.headers["X-BambooHR-Error-Message"] == (
        "lastName is required, hireDate must be YYYY-MM-DD"
    )
    assert http.post(path, json={"firstName": "A"}, headers=basic("other", "x")).status_code == 401
    created = http.post(path, json={"firstName": "A", "lastName": "B"}, headers=BAMBOO)
    assert created.status_code == 201 and created.headers["Location"].endswith("/EMP-000001")
    lists = http.get(path.replace("/employees", "/meta/lists"), headers=BAMBOO).json()
    department = next(item for item in lists if item["alias"] == "department")
    assert {"name": "Legacy Sales", "archived": "yes"}.items() <= department["options"][-1].items()


def test_hibob_takes_list_item_ids_and_known_custom_fields_only() -> None:
    http, _ = client("hibob", custom_fields=[])
    person = {"firstName": "A", "surname": "B", "email": "a@example.invalid",
              "work": {"site": "Sydney Office", "startDate": "2027-01-18"}}  # fmt: skip
    reply = http.post("/v1/people", json=person, headers=BOB)
    assert reply.status_code == 400
    assert reply.json() == {
        "key": "work.site",
        "error": "work.site: no item with id Sydney Office in list site",
    }
    person["work"] = {"site": "2451001", "startDate": "2027-01-18", "customColumns": {"x": "1"}}
    reply = http.post("/v1/people", json=person, headers=BOB)
    assert reply.json() == {"key": "work.customColumns.x", "error": "Field does not exist"}
    fields = http.get("/v1/company/people/fields", headers=BOB).json()
    assert not any(f["jsonPath"].startswith("work.customColumns") for f in fields)


def test_xero_returns_the_employee_with_its_validation_errors() -> None:
    http, sim = client("xero")
    token = http.post("/connect/token", data={"client_id": sim.client_id,
                                               "client_secret": sim.client_secret})  # fmt: skip
    headers = {"Authorization": f"Bearer {token.json()['access_token']}",
               "xero-tenant-id": sim.tenant_id}  # fmt: skip
    employee = {"FirstName": "A", "LastName": "B", "DateOfBirth": "1990-01-01",
                "HomeAddress": {"AddressLine1": "1 St", "Region": "Victoria"}}  # fmt: skip
    reply = http.post(sim.spec.path, json=[employee], headers=headers)
    assert reply.status_code == 400 and reply.json()["Type"] == "ValidationException"
    messages = [e["Message"] for e in reply.json()["Employees"][0]["ValidationErrors"]]
    assert messages == [
        "DateOfBirth must be a /Date(...)/ date",
        "HomeAddress.Region must be one of ACT, NSW, NT, QLD, SA, TAS, VIC, WA",
    ]


def test_successfactors_answers_each_record_inside_a_200() -> None:
    http, sim = client("successfactors")
    orphan = {"__metadata": {"uri": "PerEmail"}, "personIdExternal": "PU9", "emailType": "8448"}
    reply = http.post("/odata/v2/upsert", json=[PERSON, orphan], headers=SAP)
    assert reply.status_code == 200
    first, second = reply.json()["d"]
    assert first["status"] == "OK" and first["key"] == "PerPerson/personIdExternal=PU1"
    assert second["status"] == "ERROR" and second["httpCode"] == 400
    assert "no PerPerson exists" in second["message"]
    bad_date = {"__metadata": {"uri": "PerPersonal"}, "personIdExternal": "PU1",
                "startDate": "2027-01-18"}  # fmt: skip
    assert "expected an OData date" in http.post(
        "/odata/v2/upsert", json=bad_date, headers=SAP).json()["d"][0]["message"]  # fmt: skip
    unknown = http.post("/odata/v2/upsert", json={**PERSON, "shoeSize": 9}, headers=SAP)
    assert unknown.status_code == 400
    assert (
        unknown.json()["error"]["message"]["value"] == "Invalid property names: PerPerson/shoeSize"
    )
    assert len(sim.records) == 1


def test_employment_hero_refuses_bad_types_and_a_second_external_id() -> None:
    http, _ = client("employmenthero")
    employee = {"firstName": "A", "surname": "B", "dateOfBirth": "1990-01-01T00:00:00",
                "startDate": "2027-01-18T00:00:00", "externalId": "9",
                "taxFileNumber": "123"}  # fmt: skip
    reply = http.post(BASE, json={**employee, "australianResident": "Yes", "rateUnit": "Weekly"},
                      headers=EH)  # fmt: skip
    assert reply.status_code == 400
    assert reply.json()["modelState"] == {
        "employee.AustralianResident": ["Expected a boolean."],
        "employee.RateUnit": ["'Weekly' is not a valid value."],
        "employee.TaxFileNumber": ["The tax file number is invalid."],
    }
    employee["taxFileNumber"] = "123456782"
    assert http.post(BASE, json=employee, headers=EH).json()["status"] == "Created"
    again = http.post(BASE, json=employee, headers=EH)
    assert again.status_code == 400 and "employee.ExternalId" in again.json()["modelState"]
    found = http.get(f"{BASE}/externalid/9", headers=EH)
    assert found.json()["id"] == 1000
    assert http.get(f"{BASE}/externalid/10", headers=EH).status_code == 404


@pytest.mark.parametrize("flavour", ["bamboohr", "hibob", "successfactors", "employmenthero"])
def test_every_flavour_refuses_missing_credentials(flavour: str) -> None:
    http, sim = client(flavour)
    assert http.post(sim.spec.path, json={}).status_code == 401


def test_bamboohr_keeps_employee_files_and_lists_them_without_a_checksum() -> None:
    http, sim = client("bamboohr", max_upload_bytes=100)
    created = http.post(sim.spec.path, json={"firstName": "A", "lastName": "B"}, headers=BAMBOO)
    files = created.headers["Location"] + "/files"

    def upload(form: dict[str, str], content: bytes = b"%PDF-1.4 x") -> Any:
        return http.post(files, data=form, files={"file": ("c.pdf", content, "application/pdf")},
                         headers=BAMBOO)  # fmt: skip

    good = {"category": "16", "fileName": "c.pdf", "share": "no"}
    assert upload(good).status_code == 201
    again = upload(good)
    assert again.status_code == 201, "no idempotency key for files: a second copy is kept"
    for form, content, message in (
        ({**good, "category": "99"}, b"x", "Invalid category"),
        ({**good, "fileName": "c.exe"}, b"x", "Unsupported file extension"),
        (good, b"x" * 101, "File must be between 1 byte and 20MB"),
        ({**good, "share": "maybe"}, b"x", "share must be yes or no"),
    ):
        refused = upload(form, content)
        assert refused.status_code == 400
        assert refused.headers["X-BambooHR-Error-Message"] == message
    listed = http.get(created.headers["Location"] + "/files/view",
                      headers={**BAMBOO, "Accept": "application/json"}).json()  # fmt: skip
    contracts = next(c for c in listed["categories"] if c["id"] == 16)
    assert [(f["name"], f["size"]) for f in contracts["files"]] == [("c.pdf", 10)] * 2
    assert "sha256" not in contracts["files"][0]
    assert (
        http.get(created.headers["Location"] + "/files/view", headers=BAMBOO)
        .headers["content-type"]
        .startswith("text/xml")
    )


def test_bamboohr_hashes_a_large_file_as_it_arrives_and_refuses_a_broken_form() -> None:
    http, sim = client("bamboohr", max_upload_bytes=4 * 1024 * 1024)
    created = http.post(sim.spec.path, json={"firstName": "A", "lastName": "B"}, headers=BAMBOO)
    files = created.headers["Location"] + "/files"
    record_id = created.headers["Location"].rsplit("/", 1)[-1]
    content = b"%PDF-1.4\n" + bytes(range(256)) * 8192  # 2 MiB: past Starlette's 1 MiB spool
    form = {"category": "16", "fileName": "big.pdf", "share": "no"}
    reply = http.post(files, data=form, files={"file": ("big.pdf", content, "application/pdf")},
                      headers=BAMBOO)  # fmt: skip
    assert reply.status_code == 201
    (kept,) = sim.files[record_id]
    assert (kept["size"], kept["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())
    broken = http.post(files, content=b"--b\r\nno headers end", headers={
        **BAMBOO, "Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert (broken.status_code, broken.text) == (400, "Invalid multipart data.")  # Starlette's
    assert sim.files[record_id] == [kept]
