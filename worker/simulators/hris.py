"""An HRIS simulator: records posted employees, honours Idempotency-Key, injects faults.

``flavour`` makes it answer like one real "new employee" API (from their public documentation),
so that the shipped maps can be demonstrated and tested end to end:

- ``generic``: ``POST /api/employees`` (X-API-Key), JSON ``{"id": ...}`` and a Location header;
  also ``GET /api/employees?externalId=`` (look-up), ``PUT /api/employees/{id}`` and
  ``POST /api/employees/{id}/{bank-accounts|tax-declaration|superannuation}`` for multi-step maps;
- ``bamboohr``: ``POST /api/gateway.php/{domain}/v1/employees``, Basic auth with the API key as
  the user, ``firstName``/``lastName`` required, 201 with the id only in the Location header;
- ``hibob``: ``POST /v1/people``, Basic auth (service user id and token), ``firstName``,
  ``surname``, ``email``, ``work.site`` and ``work.startDate`` required, the person as JSON;
- ``xero``: ``POST /payroll.xro/1.0/Employees`` with an array body, an OAuth2 bearer token from
  ``/connect/token`` and a ``xero-tenant-id`` header, ``{"Employees": [{"EmployeeID": ...}]}``.

Idempotency keys are honoured in every flavour (a simulator convenience: of the three vendors,
none documents them, so a real deployment relies on the upsert look-up where one exists).
``slow_rate`` makes a share of posts commit the record and then answer late (after the client's
timeout): the outcome is unknown to the client, which is exactly the case the key exists for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SUB_RESOURCES = ("bank-accounts", "tax-declaration", "superannuation")


@dataclass
class HrisFaults:
    latency_seconds: float = 0.0
    error_rate: float = 0.0  # share of posts answered 503 before anything is stored
    slow_rate: float = 0.0  # share of posts stored, then answered after slow_seconds
    slow_seconds: float = 5.0
    seed: int = 2
    # The next N requests whose path contains the key are answered 503 (before storing).
    fail_next: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Flavour:
    name: str
    path: str
    auth: str  # api_key | basic | bearer
    required: tuple[str, ...]
    external_id: Callable[[dict[str, Any]], str]
    array_body: bool = False
    tenant_header: str | None = None


def _dig(payload: dict[str, Any], dotted: str) -> Any:
    value: Any = payload
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


FLAVOURS = {
    "generic": Flavour(
        "generic",
        "/api/employees",
        "api_key",
        ("externalId", "firstName", "lastName", "startDate"),
        lambda p: str(p.get("externalId")),
    ),
    "bamboohr": Flavour(
        "bamboohr",
        "/api/gateway.php/acme/v1/employees",
        "basic",
        ("firstName", "lastName"),
        lambda p: str(p.get("employeeNumber")),
    ),
    "hibob": Flavour(
        "hibob",
        "/v1/people",
        "basic",
        ("firstName", "surname", "email", "work.site", "work.startDate"),
        lambda p: str(_dig(p, "work.customColumns.pageupOfferId")),
    ),
    "xero": Flavour(
        "xero",
        "/payroll.xro/1.0/Employees",
        "bearer",
        ("FirstName", "LastName", "DateOfBirth", "HomeAddress.AddressLine1"),
        lambda p: f"{p.get('FirstName')}|{p.get('LastName')}|{p.get('DateOfBirth')}",
        array_body=True,
        tenant_header="xero-tenant-id",
    ),
}


@dataclass
class HrisState:
    flavour: str = "generic"
    api_key: str | None = "hris-sim-key"  # generic: X-API-Key; bamboohr: the Basic user
    username: str = "hris-sim-user"  # hibob: the service user id (api_key is its token)
    client_id: str = "hris-sim-client"  # xero: OAuth2 client credentials
    client_secret: str = "hris-sim-client-secret"  # noqa: S105 (a simulator's)
    tenant_id: str = "00000000-0000-4000-8000-000000000001"
    required: tuple[str, ...] | None = None  # None: the flavour's
    faults: HrisFaults = field(default_factory=HrisFaults)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    by_key: dict[str, tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    by_external_id: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    on_record: Callable[[str], None] | None = None  # called with the external id once stored
    tokens: set[str] = field(default_factory=set)
    collected: dict[str, list[Any]] = field(default_factory=dict)  # /api/intake/{collection}
    on_collect: Callable[[str, Any], None] | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.faults.seed)
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown HRIS flavour {self.flavour!r} (one of {sorted(FLAVOURS)})")

    @property
    def spec(self) -> Flavour:
        return FLAVOURS[self.flavour]

    @property
    def path(self) -> str:
        return self.spec.path

    def external_ids(self) -> Counter[str]:
        return self.by_external_id


def build_app(state: HrisState) -> Starlette:
    spec = state.spec

    def refused(request: Request) -> Response | None:
        if state.api_key is None:
            return None
        headers = request.headers
        if spec.auth == "api_key":
            ok = headers.get("x-api-key") == state.api_key
        elif spec.auth == "basic":
            user = state.api_key if state.flavour == "bamboohr" else state.username
            expected = f"{user}:x" if state.flavour == "bamboohr" else f"{user}:{state.api_key}"
            given = headers.get("authorization", "").removeprefix("Basic ")
            ok = given == base64.b64encode(expected.encode()).decode()
        else:
            ok = headers.get("authorization", "").removeprefix("Bearer ") in state.tokens
        if not ok:
            return JSONResponse({"message": "not authorised"}, status_code=401)
        if spec.tenant_header and headers.get(spec.tenant_header) != state.tenant_id:
            return JSONResponse({"message": f"{spec.tenant_header} is wrong"}, status_code=403)
        return None

    async def gate(request: Request) -> Response | None:
        """Latency, auth and injected faults, in the order a real server would apply them."""
        faults = state.faults
        if faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        denied = refused(request)
        if denied is not None:
            return denied
        for fragment, left in list(faults.fail_next.items()):
            if left > 0 and fragment in request.url.path:
                faults.fail_next[fragment] -= 1
                state.calls["injected_503"] += 1
                return JSONResponse({"message": "temporarily unavailable"}, status_code=503)
        if faults.error_rate and state.rng.random() < faults.error_rate:
            return JSONResponse({"message": "temporarily unavailable"}, status_code=503)
        return None

    def replayed(request: Request) -> Response | None:
        key = request.headers.get("idempotency-key")
        if key and key in state.by_key:
            status, body, headers = state.by_key[key]
            state.calls["idempotent_replay"] += 1
            headers = {**headers, "Idempotent-Replayed": "true"}
            return JSONResponse(body, status_code=status, headers=headers)
        return None

    def remember(request: Request, status: int, body: Any, headers: dict[str, str]) -> Response:
        key = request.headers.get("idempotency-key")
        if key:
            state.by_key[key] = (status, body, headers)
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    async def create(request: Request) -> Response:
        state.calls["post"] += 1
        early = await gate(request) or replayed(request)
        if early is not None:
            return early
        payload, problem = await _body(request)
        if problem is not None:
            return problem
        if spec.array_body:
            if not isinstance(payload, list) or len(payload) != 1:
                return _problems([{"field": "(body)", "message": "must be an array of one"}])
            payload = payload[0]
        problems = _validate(payload, state.required or spec.required)
        if problems:
            return _problems(problems)
        record_id = f"EMP-{len(state.records) + 1:06d}"
        state.records[record_id] = payload
        external_id = spec.external_id(payload)
        state.by_external_id[external_id] += 1
        status, body, headers = _created(state.flavour, record_id, payload)
        response = remember(request, status, body, headers)
        if state.on_record is not None:
            state.on_record(external_id)
        faults = state.faults
        if faults.slow_rate and state.rng.random() < faults.slow_rate:
            await asyncio.sleep(faults.slow_seconds)
        return response

    async def find(request: Request) -> Response:
        state.calls["find"] += 1
        early = await gate(request)
        if early is not None:
            return early
        wanted = request.query_params.get("externalId")
        items = [
            {"id": record_id, "externalId": record.get("externalId")}
            for record_id, record in state.records.items()
            if wanted is not None and str(record.get("externalId")) == wanted
        ]
        return JSONResponse({"items": items})

    async def update(request: Request) -> Response:
        state.calls["put"] += 1
        early = await gate(request) or replayed(request)
        if early is not None:
            return early
        record_id = request.path_params["record_id"]
        if record_id not in state.records:
            return JSONResponse({"message": "no such employee"}, status_code=404)
        payload, problem = await _body(request)
        if problem is not None:
            return problem
        state.records[record_id] = payload
        return remember(request, 200, {"id": record_id, "status": "updated"}, {})

    async def add_child(request: Request) -> Response:
        kind = request.path_params["kind"]
        state.calls[f"post_{kind}"] += 1
        early = await gate(request) or replayed(request)
        if early is not None:
            return early
        record_id = request.path_params["record_id"]
        if kind not in SUB_RESOURCES or record_id not in state.records:
            return JSONResponse({"message": "not found"}, status_code=404)
        payload, problem = await _body(request)
        if problem is not None:
            return problem
        children = state.children.setdefault(record_id, [])
        children.append((kind, payload))
        child_id = f"{kind[:3].upper()}-{sum(len(c) for c in state.children.values()):06d}"
        return remember(request, 201, {"id": child_id}, {})

    async def collect(request: Request) -> Response:
        """Generic record intake (candidate leads, assessment results) for inbound pushes."""
        collection = request.path_params["collection"]
        state.calls[f"post_{collection}"] += 1
        early = await gate(request) or replayed(request)
        if early is not None:
            return early
        payload, problem = await _body(request)
        if problem is not None:
            return problem
        items = state.collected.setdefault(collection, [])
        items.append(payload)
        if state.on_collect is not None:
            state.on_collect(collection, payload)
        return remember(request, 201, {"id": f"{collection[:4].upper()}-{len(items):06d}"}, {})

    async def token(request: Request) -> Response:
        body = (await request.body()).decode("latin-1")
        form = {k: v[0] for k, v in parse_qs(body).items()}
        if (form.get("client_id"), form.get("client_secret")) != (
            state.client_id,
            state.client_secret,
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        issued = secrets.token_urlsafe(16)
        state.tokens.add(issued)
        return JSONResponse({"access_token": issued, "token_type": "Bearer", "expires_in": 1800})

    async def stats(_: Request) -> Response:
        return JSONResponse(
            {
                "records": len(state.records),
                "calls": dict(state.calls),
                "duplicates": sum(1 for v in state.by_external_id.values() if v > 1),
            }
        )

    routes = [
        Route(spec.path, create, methods=["POST"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/connect/token", token, methods=["POST"]),
    ]
    if state.flavour == "generic":
        routes += [
            Route(spec.path, find, methods=["GET"]),
            Route(spec.path + "/{record_id}", update, methods=["PUT"]),
            Route(spec.path + "/{record_id}/{kind}", add_child, methods=["POST"]),
            Route("/api/intake/{collection}", collect, methods=["POST"]),
        ]
    return Starlette(routes=routes)


def _created(
    flavour: str, record_id: str, payload: dict[str, Any]
) -> tuple[int, Any, dict[str, str]]:
    path = FLAVOURS[flavour].path
    if flavour == "bamboohr":
        return 201, None, {"Location": f"{path}/{record_id}"}
    if flavour == "hibob":
        return 200, {"id": record_id, **payload}, {}
    if flavour == "xero":
        return 200, {"Status": "OK", "Employees": [{"EmployeeID": record_id, **payload}]}, {}
    return 201, {"id": record_id, "status": "created"}, {"Location": f"{path}/{record_id}"}


async def _body(request: Request) -> tuple[Any, Response | None]:
    try:
        return json.loads(await request.body()), None
    except ValueError:
        return None, JSONResponse({"message": "body is not JSON"}, status_code=400)


def _problems(problems: list[dict[str, str]]) -> Response:
    return JSONResponse({"errors": problems}, status_code=422)


def _validate(payload: Any, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not isinstance(payload, dict):
        return [{"field": "(body)", "message": "must be a JSON object"}]
    return [
        {"field": name, "message": "is required"}
        for name in required
        if _dig(payload, name) in (None, "")
    ]
