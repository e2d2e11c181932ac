"""An HRIS simulator: records posted employees, honours Idempotency-Key, injects faults.

``slow_rate`` makes a share of posts commit the record and then answer late (after the
client's timeout): the outcome is unknown to the client, which is exactly the case the
idempotency key exists for.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class HrisState:
    path: str = "/api/employees"
    api_key: str | None = "hris-sim-key"
    external_id_field: str = "externalId"
    required: tuple[str, ...] = ("externalId", "firstName", "lastName", "startDate")
    faults: HrisFaults = field(default_factory=HrisFaults)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    by_external_id: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    on_record: Callable[[str], None] | None = None  # called with the external id once stored

    def __post_init__(self) -> None:
        self.rng = random.Random(self.faults.seed)

    def external_ids(self) -> Counter[str]:
        return self.by_external_id


def build_app(state: HrisState) -> Starlette:
    async def create(request: Request) -> Response:
        state.calls["post"] += 1
        faults = state.faults
        if faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        if state.api_key is not None and request.headers.get("x-api-key") != state.api_key:
            return JSONResponse({"message": "invalid API key"}, status_code=401)
        if faults.error_rate and state.rng.random() < faults.error_rate:
            return JSONResponse({"message": "temporarily unavailable"}, status_code=503)
        key = request.headers.get("idempotency-key")
        if key and key in state.by_key:
            status, body = state.by_key[key]
            state.calls["idempotent_replay"] += 1
            return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"message": "body is not JSON"}, status_code=400)
        problems = _validate(payload, state.required)
        if problems:
            return JSONResponse({"errors": problems}, status_code=422)
        record_id = f"EMP-{len(state.records) + 1:06d}"
        state.records[record_id] = payload
        state.by_external_id[str(payload.get(state.external_id_field))] += 1
        body = {"id": record_id, "status": "created"}
        if key:
            state.by_key[key] = (201, body)
        if state.on_record is not None:
            state.on_record(str(payload.get(state.external_id_field)))
        if faults.slow_rate and state.rng.random() < faults.slow_rate:
            await asyncio.sleep(faults.slow_seconds)
        return JSONResponse(
            body, status_code=201, headers={"Location": f"{state.path}/{record_id}"}
        )

    async def stats(_: Request) -> Response:
        return JSONResponse(
            {
                "records": len(state.records),
                "calls": dict(state.calls),
                "duplicates": sum(1 for v in state.by_external_id.values() if v > 1),
            }
        )

    return Starlette(
        routes=[
            Route(state.path, create, methods=["POST"]),
            Route("/_sim/stats", stats, methods=["GET"]),
        ]
    )


def _validate(payload: Any, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not isinstance(payload, dict):
        return [{"field": "(body)", "message": "must be a JSON object"}]
    return [
        {"field": name, "message": "is required"}
        for name in required
        if payload.get(name) in (None, "")
    ]
