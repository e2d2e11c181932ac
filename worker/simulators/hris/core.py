"""The HRIS simulator's shared core: state, faults, auth gate, idempotency keys, the app.

Every flavour (one module each) answers like one real "new employee" API: its paths, auth,
validation and error shapes. The core gives them what all share:

- latency and injected faults (503s, slow answers) applied before a request is handled;
- ``Idempotency-Key`` replay: honoured in every flavour but ``successfactors`` (whose upsert by
  key must stand on its own, as with SAP), a simulator convenience (none of the vendors
  documents it, so a real deployment relies on the upsert look-up where one exists);
- ``slow_rate``: a share of posts commit the record and then answer late (after the client's
  timeout), the unknown outcome the key exists for;
- ``/_sim/stats`` and an OAuth2 client-credentials token endpoint.
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
from typing import Any, Protocol
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class HrisFaults:
    latency_seconds: float = 0.0
    error_rate: float = 0.0  # share of posts answered 503 before anything is stored
    slow_rate: float = 0.0  # share of posts stored, then answered after slow_seconds
    slow_seconds: float = 5.0
    seed: int = 2
    # The next N requests whose path contains the key are answered 503 (before storing).
    fail_next: Counter[str] = field(default_factory=Counter)


@dataclass
class HrisState:
    flavour: str = "generic"
    api_key: str | None = "hris-sim-key"  # X-API-Key, or the Basic user/password per flavour
    username: str = "hris-sim-user"  # hibob: the service user id; successfactors: user@company
    client_id: str = "hris-sim-client"  # OAuth2 client credentials (xero, successfactors)
    client_secret: str = "hris-sim-client-secret"  # noqa: S105 (a simulator's)
    tenant_id: str = "00000000-0000-4000-8000-000000000001"
    required: tuple[str, ...] | None = None  # None: the flavour's
    faults: HrisFaults = field(default_factory=HrisFaults)
    records: dict[str, Any] = field(default_factory=dict)  # record id -> stored payload
    children: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    by_key: dict[str, tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    by_external_id: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    on_record: Callable[[str], None] | None = None  # called with the external id once stored
    tokens: set[str] = field(default_factory=set)
    collected: dict[str, list[Any]] = field(default_factory=dict)  # /api/intake/{collection}
    on_collect: Callable[[str, Any], None] | None = None
    # The account's own option lists (bamboohr: /v1/meta/lists, hibob: named lists), and
    # its custom fields (hibob); None: the flavour's defaults, which match the shipped maps.
    lists: dict[str, list[Any]] | None = None
    custom_fields: list[str] | None = None
    # generic: external ids refused with 422, the message quoting every value sent (as some
    # APIs quote what they refused): the worker must scrub them before storing or telling.
    refuse_echoing: set[str] = field(default_factory=set)
    # successfactors: entity names whose upserts are answered ERROR inside the HTTP 200.
    refuse_entities: set[str] = field(default_factory=set)
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)  # successfactors' store
    # Every JSON body received, as (method, path, body): what the worker really sent, for the
    # tests that check it against the vendors' published schemas.
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    # Employee files (bamboohr, generic): record id -> the files kept, as the flavour lists
    # them plus their SHA-256 (never the content). See ``worker.simulators.hris.files``.
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    max_upload_bytes: int = 20 * 1024 * 1024  # BambooHR's documented limit
    # Called with ("start" | "stored", record id) as an upload arrives and once it is kept.
    on_upload: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        from worker.simulators.hris import FLAVOURS  # the registry imports every flavour

        self.rng = random.Random(self.faults.seed)
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown HRIS flavour {self.flavour!r} (one of {sorted(FLAVOURS)})")

    @property
    def spec(self) -> Flavour:
        from worker.simulators.hris import FLAVOURS

        return FLAVOURS[self.flavour]

    @property
    def path(self) -> str:
        return self.spec.path

    def external_ids(self) -> Counter[str]:
        return self.by_external_id

    def store(self, payload: Any, external_id: str, record_id: str | None = None) -> str:
        """Keep a new record; count its external id (a count above 1 is a duplicate)."""
        record_id = record_id or f"EMP-{len(self.records) + 1:06d}"
        self.records[record_id] = payload
        self.by_external_id[external_id] += 1
        if self.on_record is not None:
            self.on_record(external_id)
        return record_id


class Flavour(Protocol):
    """One vendor's API: where it creates employees, what it requires, its routes."""

    name: str
    path: str  # where an employee is created (the demo's hris.url below the base URL)
    required: tuple[str, ...]

    def authorise(self, request: Request, state: HrisState) -> Response | None:
        """None when the request's credentials are this account's, else the refusal."""

    def routes(self, server: Server) -> list[Route]: ...


class Server:
    """What a flavour's handlers share: the gate, idempotency and the state."""

    def __init__(self, state: HrisState, authorised: Callable[[Request], Response | None]):
        self.state = state
        self._authorised = authorised

    async def gate(self, request: Request) -> Response | None:
        """Latency, auth and injected faults, in the order a real server would apply them."""
        state, faults = self.state, self.state.faults
        if faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        if state.api_key is not None:
            denied = self._authorised(request)
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

    def replayed(self, request: Request) -> Response | None:
        key = request.headers.get("idempotency-key")
        if key and key in self.state.by_key:
            status, body, headers = self.state.by_key[key]
            self.state.calls["idempotent_replay"] += 1
            headers = {**headers, "Idempotent-Replayed": "true"}
            return JSONResponse(body, status_code=status, headers=headers)
        return None

    async def entry(self, request: Request, counter: str) -> Response | None:
        """Count the call, then gate and replay: a response means answer it as it is."""
        self.state.calls[counter] += 1
        return await self.gate(request) or self.replayed(request)

    def remember(
        self, request: Request, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> Response:
        headers = headers or {}
        key = request.headers.get("idempotency-key")
        if key:
            self.state.by_key[key] = (status, body, headers)
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    async def read(self, request: Request) -> tuple[Any, bool]:
        """The body as JSON and whether it parsed; a parsed body is kept in ``received``."""
        body, ok = await read_json(request)
        if ok:
            self.state.received.append((request.method, request.url.path, body))
        return body, ok

    async def maybe_slow(self) -> None:
        """The committed record's answer arrives late for a share of posts (slow_rate)."""
        faults = self.state.faults
        if faults.slow_rate and self.state.rng.random() < faults.slow_rate:
            await asyncio.sleep(faults.slow_seconds)


async def read_json(request: Request) -> tuple[Any, bool]:
    """The body as JSON, and whether it parsed."""
    try:
        return json.loads(await request.body()), True
    except ValueError:
        return None, False


def basic_pair(request: Request) -> tuple[str, str] | None:
    """The (user, password) of an HTTP Basic header, or None."""
    given = request.headers.get("authorization", "")
    if not given.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(given[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def bearer_known(request: Request, state: HrisState) -> bool:
    return request.headers.get("authorization", "").removeprefix("Bearer ") in state.tokens


def dig(payload: Any, dotted: str) -> Any:
    value: Any = payload
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def missing(payload: dict[str, Any], required: tuple[str, ...]) -> list[str]:
    return [name for name in required if dig(payload, name) in (None, "")]


def build_app(state: HrisState) -> Starlette:
    """The simulator for ``state.flavour``: its own routes, plus stats and a token endpoint."""

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
        duplicates = sum(1 for v in state.by_external_id.values() if v > 1)
        body = {"records": len(state.records), "calls": dict(state.calls)}
        return JSONResponse({**body, "duplicates": duplicates})

    flavour = state.spec
    routes = [
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/connect/token", token, methods=["POST"]),
        Route("/oauth/token", token, methods=["POST"]),
    ]
    server = Server(state, lambda request: flavour.authorise(request, state))
    return Starlette(routes=routes + flavour.routes(server))
