"""The service's small HTTP server: /healthz, /readyz, /metrics, and POST /-/reload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from worker.store.ledger import Ledger

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class Liveness:
    """The scheduler loop beats; /healthz fails when the beat goes stale."""

    stale_after: float
    last_beat: float = field(default_factory=time.monotonic)
    scheduling: bool = False

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last_beat


@dataclass
class Readiness:
    """Ready: the database answers, the maps are valid, the ATS (if on) is healthy, and at
    least one source can get a token. Each source and target is reported by name: one tenant
    refusing our credentials, or a target resting, is named without taking the service (and
    its inbound endpoints) out of rotation."""

    ledger: Ledger
    sources: Callable[[], dict[str, str]] = dict  # name -> "ok" or what is wrong
    targets: Callable[[], dict[str, str]] = dict
    map_problem: str | None = None
    # The ATS's health (job postings on), checked at most every ats_health_ttl seconds.
    ats_health: Callable[[], Awaitable[str]] | None = None
    ats_health_ttl: float = 30.0
    _ats_seen: tuple[float, str] | None = None

    async def ats(self) -> str:
        if self.ats_health is None:
            return "ok"
        if self._ats_seen is None or time.monotonic() - self._ats_seen[0] > self.ats_health_ttl:
            try:
                await self.ats_health()
                result = "ok"
            except Exception as exc:  # any failure: not ready, with the reason
                result = f"unhealthy: {str(exc)[:200]}"
            self._ats_seen = (time.monotonic(), result)
        return self._ats_seen[1]


async def readiness_report(readiness: Readiness) -> dict[str, Any]:
    """What /readyz answers (the console's overview shows it too)."""
    checks: dict[str, str] = {}
    try:
        await asyncio.to_thread(readiness.ledger.ping)
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["field_map"] = readiness.map_problem or "ok"
    if readiness.ats_health is not None:
        checks["ats"] = await readiness.ats()
    sources, targets = readiness.sources(), readiness.targets()
    any_source = not sources or any(value == "ok" for value in sources.values())
    ready = all(value == "ok" for value in checks.values()) and any_source
    if not any_source:
        checks["sources"] = "no source can get a PageUp token"
    return {"status": "ready" if ready else "not ready", "checks": checks,
            "sources": sources, "targets": targets}  # fmt: skip


def build_app(
    liveness: Liveness,
    readiness: Readiness,
    reload: Callable[[], Awaitable[tuple[bool, str]]],
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Health, readiness, metrics and reload; ``extra_routes``: the inbound push endpoints."""

    async def healthz(_: Request) -> Response:
        age = liveness.age()
        alive = liveness.scheduling and age < liveness.stale_after
        body = {"status": "ok" if alive else "stale", "heartbeat_age_seconds": round(age, 1)}
        return JSONResponse(body, status_code=200 if alive else 503)

    async def readyz(_: Request) -> Response:
        report = await readiness_report(readiness)
        return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def reload_maps(request: Request) -> Response:
        if request.client is None or request.client.host not in LOOPBACK:
            return JSONResponse({"error": "reload is only accepted from loopback"}, 403)
        reloaded, detail = await reload()
        if reloaded:
            return JSONResponse({"status": "reloaded", "version": detail})
        return JSONResponse({"status": "refused", "problems": detail}, status_code=422)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/-/reload", reload_maps, methods=["POST"]),
            *extra_routes,
        ]
    )
