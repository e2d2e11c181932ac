"""The console's HTTP plumbing: who is asking (session cookie or auth proxy), roles, CSRF, the
security headers, and the Starlette app that the pages and the API are mounted in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from worker.console.auth import COOKIE, Authenticator, Identity, Role, secure_cookie
from worker.console.context import ConsoleContext

HERE = Path(__file__).parent
PEER = "hirebridge.peer"  # the TCP peer, kept before X-Forwarded-For is applied
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

Handler = Callable[[Request, Identity], Awaitable[Response]]


class KeepPeer:
    """Outermost ASGI layer: keeps the TCP peer address before the proxy-headers middleware
    replaces ``client`` with the X-Forwarded-For one (the auth proxy is judged by its own
    address, never by what a client claims)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            scope[PEER] = scope["client"][0]
        await self.app(scope, receive, send)


class Console:
    """The console of one running service."""

    def __init__(self, ctx: ConsoleContext) -> None:
        self.ctx = ctx
        settings = ctx.settings()
        self.auth = Authenticator(settings.console, settings.service.trusted_proxies)

    # -- identity -------------------------------------------------------------------------

    def identify(self, request: Request) -> Identity | None:
        if self.auth.settings.mode == "proxy":
            return self.auth.from_proxy(peer(request), request.headers)
        found = self.auth.from_cookie(request.cookies.get(COOKIE))
        return None if found is None else found[0]

    def set_session(
        self, response: Response, request: Request, identity: Identity, began: float | None = None
    ) -> None:
        if identity.session_id == "proxy":
            return
        response.set_cookie(
            COOKIE,
            self.auth.session_cookie(identity, began),
            httponly=True,
            secure=secure_cookie(request.headers.get("host", "")),
            samesite="strict",
            path="/console",
            max_age=int(self.auth.settings.absolute_timeout_hours * 3600),
        )

    # -- guards ---------------------------------------------------------------------------

    def page(
        self, role: Role, handler: Handler, *, write: bool = False, api: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: signed in (else the sign-in page, or 401 for the API), the role
        (else 403), a valid CSRF token on writes (else 403); the session's idle clock reset."""

        async def endpoint(request: Request) -> Response:
            found = None
            if self.auth.settings.mode == "users":
                found = self.auth.from_cookie(request.cookies.get(COOKIE))
                who = None if found is None else found[0]
            else:
                who = self.identify(request)
            if who is None:
                if api or request.method != "GET":
                    return secured(JSONResponse({"error": "sign in first"}, 401))
                return secured(RedirectResponse("/console/login", 303))
            if not who.may(role):
                return secured(refused(api, f"this needs the {role} role"))
            if write and not await self._csrf_ok(request, who):
                return secured(refused(api, "missing or invalid CSRF token"))
            response = await handler(request, who)
            # A page refreshing itself is not the user at work: it leaves the idle clock alone.
            if found is not None and request.query_params.get("refresh") != "auto":
                self.set_session(response, request, who, began=found[1])
            return secured(response)

        return endpoint

    async def _csrf_ok(self, request: Request, who: Identity) -> bool:
        token = request.headers.get("x-csrf-token")
        if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf")
            token = value if isinstance(value, str) else None
        return self.auth.csrf_valid(who, token)


def peer(request: Request) -> str | None:
    found = request.scope.get(PEER)
    if found is not None:
        return str(found)
    return request.client.host if request.client else None


def refused(api: bool, message: str) -> Response:
    if api:
        return JSONResponse({"error": message}, 403)
    return Response(f"403 Forbidden: {message}\n", 403, media_type="text/plain")


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def console_app(ctx: ConsoleContext) -> Mount:
    """``/console``: pages, the JSON API and the static files, for ``build_app``."""
    from worker.console.api import api_routes
    from worker.console.pages import page_routes

    console = Console(ctx)
    routes: list[BaseRoute] = [
        *page_routes(console),
        Mount("/api", routes=api_routes(console)),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Mount("/console", app=Starlette(routes=routes))
