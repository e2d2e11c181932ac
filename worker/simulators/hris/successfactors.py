"""SAP SuccessFactors Employee Central: the OData v2 ``upsert`` function import.

From SAP's public documentation and its published entity metadata (the Personal Information
and Employment Information APIs on the API Business Hub):
- ``POST /odata/v2/upsert`` takes a JSON entity whose ``__metadata.uri`` names its entity set
  (``PerPerson``, ``EmpEmployment``, ``EmpJob``, ``PerPersonal``, ``PerEmail``, ``PerPhone``);
- the answer is HTTP 200 with one result per record, ``{"d": [{"key", "status": "OK"|"ERROR",
  "editStatus", "message", "index", "httpCode", "inlineResults"}]}``: a record can fail inside
  a 200;
- dates are OData v2 JSON ``/Date(milliseconds)/``; the key properties (non-nullable in the
  metadata) must be given; an unknown property refuses the whole request with an OData error
  ``{"error": {"code", "message": {"lang", "value"}}}``;
- auth: HTTP Basic (``user@companyId`` and password) or an OAuth2 bearer token. SAP's token
  endpoint wants a SAML bearer assertion; this simulator's ``/oauth/token`` takes client
  credentials instead (client id and secret), which is what hirebridge's ``oauth2`` sends.

SAP documents no idempotency key, and this flavour replays none (unlike the simulator's other
flavours): a hire sent again is made safe only by the upsert's keys, as with the real API.

Assumed: the picklist option ids (``emailType``, ``phoneType``) and foundation codes
(``company``, ``eventReason``) below, which are per tenant; that a dependent record whose person
or employment does not exist yet fails with ``httpCode`` 400.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.hris.core import HrisState, Server, basic_pair, bearer_known

_MS_DATE = re.compile(r"^/Date\((-?\d+)\)/$")
# entity -> (key properties, other properties this simulator accepts, date properties)
ENTITIES: dict[str, tuple[tuple[str, ...], frozenset[str], frozenset[str]]] = {
    "PerPerson": (("personIdExternal",), frozenset({"dateOfBirth", "countryOfBirth", "userId"}),
                  frozenset({"dateOfBirth"})),
    "EmpEmployment": (("personIdExternal", "userId"),
                      frozenset({"startDate", "originalStartDate", "isContingentWorker"}),
                      frozenset({"startDate", "originalStartDate"})),
    "EmpJob": (("userId", "startDate", "seqNumber"),
               frozenset({"company", "eventReason", "jobTitle", "department", "location",
                          "standardHours", "isFulltimeEmployee", "employeeClass", "managerId",
                          "businessUnit", "jobCode", "costCenter", "regularTemp"}),
               frozenset({"startDate"})),
    "PerPersonal": (("personIdExternal", "startDate"),
                    frozenset({"firstName", "lastName", "middleName", "preferredName", "gender"}),
                    frozenset({"startDate"})),
    "PerEmail": (("personIdExternal", "emailType"), frozenset({"emailAddress", "isPrimary"}),
                 frozenset()),
    "PerPhone": (("personIdExternal", "phoneType"),
                 frozenset({"phoneNumber", "countryCode", "areaCode", "isPrimary"}), frozenset()),
}  # fmt: skip
BOOLEANS = frozenset({"isPrimary", "isFulltimeEmployee", "isContingentWorker"})
PICKLISTS = {
    "emailType": {"8448", "8447"},  # Business, Personal
    "phoneType": {"10605", "10606"},  # Business, Cell
    "company": {"ACE_AUS"},
    "eventReason": {"HIRNEW"},
}
PARENT = {"EmpEmployment": "PerPerson", "PerPersonal": "PerPerson", "PerEmail": "PerPerson",
          "PerPhone": "PerPerson", "EmpJob": "EmpEmployment"}  # fmt: skip


def odata_error(code: str, message: str, status: int = 400) -> Response:
    body = {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}
    return JSONResponse(body, status_code=status)


def entity_of(record: Any) -> str | None:
    """``PerPerson``, ``PerPerson('x')`` or ``https://.../odata/v2/PerPerson`` -> PerPerson."""
    uri = record.get("__metadata", {}).get("uri") if isinstance(record, dict) else None
    if not isinstance(uri, str):
        return None
    return uri.rstrip("/").rsplit("/", 1)[-1].split("(", 1)[0] or None


class SuccessFactors:
    name = "successfactors"
    path = "/odata/v2/upsert"
    required: tuple[str, ...] = ()

    def authorise(self, request: Request, state: HrisState) -> Response | None:
        if basic_pair(request) == (state.username, state.api_key) or bearer_known(request, state):
            return None
        return odata_error("COE_AUTHENTICATION_FAILED", "Authentication failed", 401)

    def routes(self, server: Server) -> list[Route]:
        state = server.state

        async def upsert(request: Request) -> Response:
            state.calls["post"] += 1
            early = await server.gate(request)  # no Idempotency-Key replay: SAP has none
            if early is not None:
                return early
            payload, ok = await server.read(request)
            records = payload if isinstance(payload, list) else [payload]
            if not ok or not records or not all(isinstance(r, dict) for r in records):
                return odata_error("COE_GENERAL_BAD_REQUEST", "Malformed JSON payload")
            for record in records:
                refusal = self.unknown(record)
                if refusal is not None:
                    return odata_error("COE_PROPERTY_NOT_FOUND", refusal)
            results = [self.one(record, index, state) for index, record in enumerate(records)]
            response = JSONResponse({"d": results})
            await server.maybe_slow()
            return response

        async def service_document(request: Request) -> Response:
            """OData v2's service document: what a GET (or HEAD) on the service root answers."""
            early = await server.gate(request)
            return early or JSONResponse({"d": {"EntitySets": sorted(ENTITIES)}})

        return [
            Route(self.path, upsert, methods=["POST"]),
            Route("/odata/v2", service_document, methods=["GET"]),
        ]

    def unknown(self, record: dict[str, Any]) -> str | None:
        entity = entity_of(record)
        if entity not in ENTITIES:
            return f"Entity {entity} is not upsertable here (give __metadata.uri)"
        keys, others, _ = ENTITIES[entity]
        extra = sorted(set(record) - {"__metadata", *keys, *others})
        return f"Invalid property names: {entity}/{', '.join(extra)}" if extra else None

    def one(self, record: dict[str, Any], index: int, state: HrisState) -> dict[str, Any]:
        entity = str(entity_of(record))
        keys, _, dates = ENTITIES[entity]
        key = f"{entity}/" + ",".join(f"{k}={record.get(k)}" for k in sorted(keys))
        problem = self.problem(entity, record, keys, dates, state)
        if problem is None and entity in state.refuse_entities:
            # SAP's messages quote the record's values: this one lets tests see them scrubbed.
            quoted = ", ".join(f"{k}={v}" for k, v in record.items() if isinstance(v, str))
            problem = f"{entity} was refused by a business rule of this tenant ({quoted})"
        if problem is not None:
            return {"key": key, "status": "ERROR", "editStatus": None, "message": problem,
                    "index": index, "httpCode": 400, "inlineResults": None}  # fmt: skip
        store = state.entities.setdefault(entity, {})
        if entity == "PerPerson" and key not in store:
            state.store(record, str(record["personIdExternal"]), record_id=key)
        store[key] = record
        return {"key": key, "status": "OK", "editStatus": "UPSERTED", "message": None,
                "index": index, "httpCode": 200, "inlineResults": None}  # fmt: skip

    def problem(
        self,
        entity: str,
        record: dict[str, Any],
        keys: tuple[str, ...],
        dates: frozenset[str],
        state: HrisState,
    ) -> str | None:
        for name in keys:
            if record.get(name) in (None, ""):
                return f"[COE0018] {name} is a key of {entity} and is required"
        for name, value in record.items():
            if name in dates and not (isinstance(value, str) and _MS_DATE.match(value)):
                return f"{name}: expected an OData date /Date(milliseconds)/"
            if name in BOOLEANS and not isinstance(value, bool):
                return f"{name}: expected a boolean"
            if name in PICKLISTS and value not in PICKLISTS[name]:
                return f"Invalid value for {name}: no picklist option or code with that id"
        parent = PARENT.get(entity)
        if parent is not None and not self.has_parent(parent, record, state):
            return f"{entity}: no {parent} exists for this record yet (upsert the {parent} first)"
        return None

    def has_parent(self, parent: str, record: dict[str, Any], state: HrisState) -> bool:
        stored = state.entities.get(parent, {}).values()
        link = "personIdExternal" if parent == "PerPerson" else "userId"
        return any(other.get(link) == record.get(link) for other in stored)
