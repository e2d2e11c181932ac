"""The console's HTML pages (Jinja2, autoescaped). Every action is a plain form POST with its
CSRF token, answered by a redirect back with what happened: no script is needed."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from worker import __version__
from worker.console import actions, maps, reads
from worker.console.auth import COOKIE, Identity
from worker.console.filters import offer_filter
from worker.console.web import HERE, Console, secured
from worker.store.interventions import OfferKey

TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))  # autoescaped
# JSON as people read it (tojson escapes every non-ASCII character); still autoescaped.
TEMPLATES.env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)


def page_routes(console: Console) -> list[BaseRoute]:
    p = _Pages(console)
    g = console.page
    return [
        Route("/", g("viewer", p.overview)),
        Route("/login", p.login_form, methods=["GET"]),
        Route("/login", p.login, methods=["POST"]),
        Route("/logout", g("viewer", p.logout, write=True), methods=["POST"]),
        Route("/offers", g("viewer", p.offers)),
        Route("/offers/{source}/{offer_id}", g("viewer", p.offer)),
        Route(
            "/offers/{source}/{offer_id}/{action:str}",
            g("operator", p.offer_action, write=True),
            methods=["POST"],
        ),
        Route("/runs", g("viewer", p.runs)),
        Route("/runs/now", g("operator", p.run_now, write=True), methods=["POST"]),
        Route("/maps", g("viewer", p.maps)),
        Route("/maps/{target}", g("viewer", p.map_page)),
        Route("/maps/{target}/preview", g("viewer", p.map_preview, write=True), methods=["POST"]),
        Route("/maps/{target}/try", g("admin", p.map_try, write=True), methods=["POST"]),
        Route("/maps/{target}/apply", g("admin", p.map_apply, write=True), methods=["POST"]),
        Route("/maps/{target}/rollback", g("admin", p.map_rollback, write=True), methods=["POST"]),
        Route("/inbox", g("viewer", p.inbox)),
        Route(
            "/inbox/{item_id:int}/retry", g("operator", p.inbox_retry, write=True), methods=["POST"]
        ),
        Route("/jobs", g("viewer", p.jobs)),
        Route("/jobs/link", g("operator", p.job_link, write=True), methods=["POST"]),
        Route("/jobs/retry", g("operator", p.jobs_retry, write=True), methods=["POST"]),
        Route("/support-bundle", g("admin", p.support_bundle, write=True), methods=["POST"]),
    ]


class _Pages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.ctx = console.ctx

    def render(
        self, request: Request, who: Identity | None, name: str, status: int = 200, **data: Any
    ) -> Response:
        settings = self.ctx.settings()
        context = {
            "who": who,
            "csrf": self.console.auth.csrf_token(who) if who else None,
            "version": __version__,
            "done": request.query_params.get("done"),
            "failed": request.query_params.get("failed"),
            "quote": quote,
            "sources": list(settings.sources),
            "targets": list(settings.targets),
            "mode": settings.console.mode,
            **data,
        }
        return TEMPLATES.TemplateResponse(request, name, context, status_code=status)

    # -- signing in -----------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        return secured(self.render(request, None, "login.html", error=None))

    async def login(self, request: Request) -> Response:
        if self.console.auth.settings.mode != "users":
            return secured(
                self.render(
                    request, None, "login.html", 400, error="sign-in is done by the auth proxy"
                )
            )
        form = await request.form()
        user, password = str(form.get("user") or ""), str(form.get("password") or "")
        # The client's address (X-Forwarded-For applied when the peer is a trusted proxy):
        # behind a reverse proxy every sign-in would otherwise share the proxy's.
        address = request.client.host if request.client else "?"
        found = self.console.auth.sign_in(user, password, address)
        if isinstance(found, str):
            status = 429 if found.startswith("too many") else 401
            return secured(self.render(request, None, "login.html", status, error=found))
        response = RedirectResponse("/console/", 303)
        self.console.set_session(response, request, found)
        return secured(response)

    async def logout(self, request: Request, who: Identity) -> Response:
        response = RedirectResponse("/console/login", 303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # -- reading --------------------------------------------------------------------------

    async def overview(self, request: Request, who: Identity) -> Response:
        data = await reads.overview(self.ctx, who)
        # WCAG 2.2.1: a page that refreshes itself lets its reader stop it.
        refresh = request.query_params.get("refresh") != "off"
        return self.render(request, who, "overview.html", data=data, refresh=refresh)

    async def offers(self, request: Request, who: Identity) -> Response:
        wanted, page = offer_filter(request.query_params)
        data = await reads.offers(self.ctx, who, wanted, page)
        stages = await self.ctx.run(_stages, self.ctx)
        query = {k: v for k, v in request.query_params.items() if k != "page"}
        return self.render(
            request, who, "offers.html", data=data, stages=stages, query=urlencode(query)
        )

    async def offer(self, request: Request, who: Identity) -> Response:
        source, offer_id = request.path_params["source"], request.path_params["offer_id"]
        data = await reads.offer(self.ctx, who, source, offer_id)
        if data is None:
            return self.render(request, who, "missing.html", 404, what=f"offer {offer_id}")
        return self.render(request, who, "offer.html", offer=data)

    async def runs(self, request: Request, who: Identity) -> Response:
        source = request.query_params.get("source") or None
        data = await reads.runs(self.ctx, who, limit=100, source=source)
        return self.render(request, who, "runs.html", runs=data, source=source)

    async def inbox(self, request: Request, who: Identity) -> Response:
        source = request.query_params.get("source") or None
        data = await reads.inbox(self.ctx, who, source)
        return self.render(request, who, "inbox.html", data=data, source=source)

    async def jobs(self, request: Request, who: Identity) -> Response:
        data = await reads.jobs(self.ctx, who)
        return self.render(request, who, "jobs.html", data=data)

    # -- actions --------------------------------------------------------------------------

    async def offer_action(self, request: Request, who: Identity) -> Response:
        source, offer_id = request.path_params["source"], request.path_params["offer_id"]
        action = request.path_params["action"]
        form = await request.form()
        reason = str(form.get("reason") or "").strip() or None
        key = OfferKey(source, offer_id)
        back = f"/console/offers/{quote(source, safe='')}/{quote(offer_id, safe='')}"
        if action == "retry":
            outcome = await actions.retry(self.ctx, who, key, reason)
        elif action in ("skip", "mark-processed"):
            if action == "mark-processed" and form.get("confirm") != "yes":
                return _back(back, actions.Outcome(False, "tick the confirmation first"))
            outcome = await actions.skip(
                self.ctx, who, key, reason or "", mark=action == "mark-processed"
            )
        else:
            return Response("unknown action", 404)
        return _back(back, outcome)

    async def run_now(self, request: Request, who: Identity) -> Response:
        form = await request.form()
        outcome = await actions.run_now(self.ctx, who, str(form.get("source") or "") or None)
        return _back("/console/runs", outcome)

    async def inbox_retry(self, request: Request, who: Identity) -> Response:
        outcome = await actions.inbox_retry(self.ctx, who, request.path_params["item_id"])
        return _back("/console/inbox", outcome)

    async def job_link(self, request: Request, who: Identity) -> Response:
        form = await request.form()
        outcome = await actions.job_link(
            self.ctx, who, str(form.get("source_id") or ""), str(form.get("ats_job_id") or "")
        )
        return _back("/console/jobs", outcome)

    async def jobs_retry(self, request: Request, who: Identity) -> Response:
        return _back("/console/jobs", await actions.jobs_retry(self.ctx, who))

    async def support_bundle(self, request: Request, who: Identity) -> Response:
        from worker.console.bundle import download

        return await download(self.ctx, who, await request.form())

    # -- field maps -----------------------------------------------------------------------

    async def maps(self, request: Request, who: Identity) -> Response:
        settings = self.ctx.settings()
        listed = [{"target": n, "path": str(t.mapping)} for n, t in settings.targets.items()]
        return self.render(request, who, "maps.html", maps=listed)

    async def map_page(self, request: Request, who: Identity, **extra: Any) -> Response:
        target = request.path_params["target"]
        data = await maps.view(self.ctx, target)
        if data is None:
            return self.render(request, who, "missing.html", 404, what=f"target {target}")
        return self.render(request, who, "map.html", map=data, **extra)

    async def map_preview(self, request: Request, who: Identity) -> Response:
        from worker.console.workbench import preview

        form = await request.form()
        result = await preview(self.ctx, who, request.path_params["target"], form)
        return await self.map_page(request, who, preview=result, form=dict(form))

    async def map_try(self, request: Request, who: Identity) -> Response:
        from worker.console.workbench import try_candidate

        form = await request.form()
        result = await try_candidate(self.ctx, who, request.path_params["target"], form)
        status = 200 if not result["problems"] else 422
        response = await self.map_page(request, who, attempt=result, form=dict(form))
        response.status_code = status
        return response

    async def map_apply(self, request: Request, who: Identity) -> Response:
        from worker.console.workbench import apply_candidate

        form = await request.form()
        result = await apply_candidate(self.ctx, who, request.path_params["target"], form)
        response = await self.map_page(request, who, attempt=result, form=dict(form))
        response.status_code = 200 if result["applied"] else 422
        return response

    async def map_rollback(self, request: Request, who: Identity) -> Response:
        from worker.console.workbench import rollback

        form = await request.form()
        result = await rollback(self.ctx, who, request.path_params["target"], form)
        response = await self.map_page(request, who, attempt=result)
        response.status_code = 200 if result["applied"] else 422
        return response


_STAGES: dict[int, tuple[float, list[str]]] = {}
STAGES_TTL = 30.0  # the filter's stage choices are read again at most this often


def _stages(ctx: Any) -> list[str]:
    from worker.store.browse import Browse

    seen = _STAGES.get(id(ctx.engine))
    if seen is None or time.monotonic() - seen[0] > STAGES_TTL:
        seen = (time.monotonic(), Browse(ctx.engine).stages())
        _STAGES[id(ctx.engine)] = seen
    return seen[1]


def _back(url: str, outcome: actions.Outcome) -> Response:
    key = "done" if outcome.ok else "failed"
    return RedirectResponse(f"{url}?{urlencode({key: outcome.message})}", 303)
