"""The inbound endpoints' OpenAPI document (worker/inbound/openapi.py): a valid document, served,
and true of the real answers and of Apna's leads."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from tests.inbound.conftest import APNA_PASSWORD, APNA_USER, POP_AUTH, Rig
from tests.openapi import check_document, check_response
from worker.simulators.apna import make_leads

APNA, POP = "/inbound/apna", "/inbound/pop/{application_id}"


def test_the_served_document_is_valid_openapi_and_true_of_the_answers(rig: Rig) -> None:
    spec: dict[str, Any] = httpx.get(f"{rig.url}/inbound/openapi.json").json()
    check_document(spec)
    assert set(spec["paths"]) == {APNA, POP}
    auth = (APNA_USER, APNA_PASSWORD)
    lead = make_leads(1)[0]
    cases = [
        (APNA, "post", httpx.post(f"{rig.url}{APNA}", json=lead, auth=auth)),
        (APNA, "post", httpx.post(f"{rig.url}{APNA}", json={"full_name": 3}, auth=auth)),
        (APNA, "post", httpx.post(f"{rig.url}{APNA}", json=lead, auth=("x", "y"))),
        (APNA, "post", httpx.post(f"{rig.url}{APNA}", content=b"x", auth=auth)),
    ]
    user, password = POP_AUTH.split(":")
    cases += [
        (POP, "post", httpx.post(f"{rig.url}/inbound/pop/123", json={"report_id": "r1"},
                                 auth=(user, password))),
        (POP, "post", httpx.post(f"{rig.url}/inbound/pop/abc", auth=(user, password))),
        (POP, "get", httpx.get(f"{rig.url}/inbound/pop/123", auth=("a", "b"))),
    ]  # fmt: skip
    assert [response.status_code for _, _, response in cases] == [200, 400, 401, 415, 200, 400, 401]
    for path, method, response in cases:
        check_response(spec, path, method, response.status_code, response.json())


def test_the_lead_schema_accepts_apnas_leads_and_refuses_what_the_endpoint_refuses(
    rig: Rig,
) -> None:
    spec = httpx.get(f"{rig.url}/inbound/openapi.json").json()
    schemas = spec["components"]["schemas"]
    validator = jsonschema.Draft202012Validator(
        {**schemas["ApnaLead"], "components": spec["components"]}
    )
    for lead in make_leads(5):
        validator.validate(lead)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"full_name": "x"})  # no contact_info: the endpoint says 400 too
