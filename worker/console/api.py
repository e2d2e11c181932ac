"""``/console/api/``: the pages' data and actions as JSON, with the same sign-in, roles and
CSRF (the ``X-CSRF-Token`` header, from ``GET /console/api/session``). Described by
``openapi.yaml`` beside this module, served at ``/console/api/openapi.json``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from worker.console import actions, maps, reads, workbench
from worker.console.auth import Identity
from worker.console.filters import offer_filter
from worker.console.web import Console, secured
from worker.store.interventions import OfferKey

SPEC = Path(__file__).with_name("openapi.yaml")


@cache
def openapi() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return spec


def api_routes(console: Console) -> list[BaseRoute]:
    a = _Api(console)
    g = console.page

    def read(handler: Any) -> Any:
        return g("viewer", handler, api=True)

    def act(role: Any, handler: Any) -> Any:
        return g(role, handler, write=True, api=True)

    return [
        Route("/openapi.json", a.spec),
        Route("/session", read(a.session)),
        Route("/overview", read(a.overview)),
        Route("/offers", read(a.offers)),
        Route("/offers/{source}/{offer_id}", read(a.offer)),
        Route("/offers/{source}/{offer_id}/retry", act("operator", a.retry), methods=["POST"]),
        Route("/offers/{source}/{offer_id}/skip", act("operator", a.skip), methods=["POST"]),
        Route(
            "/offers/{source}/{offer_id}/mark-processed", act("operator", a.mark), methods=["POST"]
        ),
        Route("/runs", read(a.runs)),
        Route("/runs/now", act("operator", a.run_now), methods=["POST"]),
        Route("/inbox", read(a.inbox)),
        Route("/inbox/{item_id:int}/retry", act("operator", a.inbox_retry), methods=["POST"]),
        Route("/jobs", read(a.jobs)),
        Route("/jobs/link", act("operator", a.job_link), methods=["POST"]),
        Route("/jobs/retry", act("operator", a.jobs_retry), methods=["POST"]),
        Route("/maps/{target}", read(a.map_view)),
        Route("/maps/{target}/preview", act("viewer", a.preview), methods=["POST"]),
        Route("/maps/{target}/check", act("admin", a.check), methods=["POST"]),
        Route("/maps/{target}/apply", act("admin", a.apply), methods=["POST"]),
        Route("/maps/{target}/rollback", act("admin", a.rollback), methods=["POST"]),
        Route("/support-bundle", act("admin", a.support_bundle), methods=["POST"]),
    ]


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _outcome(outcome: actions.Outcome) -> Response:
    return JSONResponse({"ok": outcome.ok, "message": outcome.message}, 200 if outcome.ok else 409)


class _Api:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.ctx = console.ctx

    async def spec(self, _: Request) -> Response:
        return secured(JSONResponse(openapi()))

    async def session(self, _: Request, who: Identity) -> Response:
        return JSONResponse(
            {"user": who.user, "role": who.role, "csrf_token": self.console.auth.csrf_token(who)}
        )

    async def overview(self, _: Request, who: Identity) -> Response:
        return JSONResponse(await reads.overview(self.ctx, who))

    async def offers(self, request: Request, who: Identity) -> Response:
        wanted, page = offer_filter(request.query_params)
        return JSONResponse(await reads.offers(self.ctx, who, wanted, page))

    async def offer(self, request: Request, who: Identity) -> Response:
        p = request.path_params
        found = await reads.offer(self.ctx, who, p["source"], p["offer_id"])
        if found is None:
            return JSONResponse({"error": "no such offer"}, 404)
        return JSONResponse(found)

    def _key(self, request: Request) -> OfferKey:
        return OfferKey(request.path_params["source"], request.path_params["offer_id"])

    async def retry(self, request: Request, who: Identity) -> Response:
        body = await _body(request)
        reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        target = body.get("target") if isinstance(body.get("target"), str) else None
        return _outcome(await actions.retry(self.ctx, who, self._key(request), reason, target))

    async def skip(self, request: Request, who: Identity, mark: bool = False) -> Response:
        body = await _body(request)
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return JSONResponse({"error": "reason: required"}, 422)
        if mark and body.get("confirm") is not True:
            return JSONResponse({"error": "confirm: must be true"}, 422)
        return _outcome(await actions.skip(self.ctx, who, self._key(request), reason, mark=mark))

    async def mark(self, request: Request, who: Identity) -> Response:
        return await self.skip(request, who, mark=True)

    async def runs(self, request: Request, who: Identity) -> Response:
        source = request.query_params.get("source") or None
        return JSONResponse({"runs": await reads.runs(self.ctx, who, limit=100, source=source)})

    async def run_now(self, request: Request, who: Identity) -> Response:
        source = (await _body(request)).get("source")
        return _outcome(
            await actions.run_now(self.ctx, who, source if isinstance(source, str) else None)
        )

    async def inbox(self, request: Request, who: Identity) -> Response:
        return JSONResponse(await reads.inbox(self.ctx, who, request.query_params.get("source")))

    async def inbox_retry(self, request: Request, who: Identity) -> Response:
        return _outcome(await actions.inbox_retry(self.ctx, who, request.path_params["item_id"]))

    async def jobs(self, _: Request, who: Identity) -> Response:
        return JSONResponse(await reads.jobs(self.ctx, who))

    async def job_link(self, request: Request, who: Identity) -> Response:
        body = await _body(request)
        source_id, ats_id = body.get("source_id"), body.get("ats_job_id")
        if not isinstance(source_id, str) or not isinstance(ats_id, str):
            return JSONResponse({"error": "source_id and ats_job_id: required strings"}, 422)
        return _outcome(await actions.job_link(self.ctx, who, source_id, ats_id))

    async def jobs_retry(self, _: Request, who: Identity) -> Response:
        return _outcome(await actions.jobs_retry(self.ctx, who))

    async def map_view(self, request: Request, who: Identity) -> Response:
        found = await maps.view(self.ctx, request.path_params["target"])
        if found is None:
            return JSONResponse({"error": "no such target"}, 404)
        return JSONResponse(found)

    async def preview(self, request: Request, who: Identity) -> Response:
        body = await _body(request)
        found = await workbench.preview(self.ctx, who, request.path_params["target"], body)
        return JSONResponse(found, 200 if "error" not in found else 422)

    async def check(self, request: Request, who: Identity) -> Response:
        body = await _body(request)
        found = await workbench.try_candidate(self.ctx, who, request.path_params["target"], body)
        found.pop("lines", None)
        return JSONResponse(found, 200 if not found["problems"] else 422)

    async def apply(self, request: Request, who: Identity) -> Response:
        body = await _body(request)
        found = await workbench.apply_candidate(self.ctx, who, request.path_params["target"], body)
        found.pop("lines", None)
        found.pop("candidate", None)
        return JSONResponse(found, 200 if found["applied"] else 422)

    async def support_bundle(self, request: Request, who: Identity) -> Response:
        from worker.console.bundle import download

        return await download(self.ctx, who, await _body(request))

    async def rollback(self, request: Request, who: Identity) -> Response:
        body = await _body(request)
        found = await workbench.rollback(self.ctx, who, request.path_params["target"], body)
        return JSONResponse(found, 200 if found["applied"] else 422)
