"""The HTTP side of inbound pushes: authenticate, limit, validate, store, then answer.

A push is answered 200 only after it is committed to the inbox, and with a status the sender
retries when it cannot be (Apna retries any error once after 5 s; the POP Engine retries only
the statuses in its ``http_err``, so we answer 503, which our generated config lists).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker import alerts, metrics
from worker.inbound.apna import lead_problems
from worker.inbound.body import BodyError, parse_json
from worker.inbound.pop import valid_application_id, valid_report_id
from worker.settings import InboundAuthSettings, InboundSettings
from worker.store.inbox import Inbox
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)
APNA_SUCCESS = {"status": "success", "message": "Lead data received successfully."}
# The dedup key's canonical form (sorted keys, no spaces, as sent); made once, not per push.
_canonical = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
).encode  # check_circular: parsed JSON cannot refer to itself
Store = Callable[[str, str, str], Awaitable[bool]]


class TooLarge(Exception):
    pass


class Abandoned(Exception):
    """The body never arrived in full: nothing to store, and no one to answer."""


Waiting = list[tuple[tuple[str, str, str], "asyncio.Future[bool]"]]  # (push, its answer)


class InboxWriter:
    """Commits pushes to the inbox through the store's thread, where concurrent pushes share
    one transaction (group commit): each is answered once its own row is durable.

    The pushes that arrive in one turn of the event loop go to the store's thread as one
    write: a write per push cost more CPU in handing it over (a future, a queue, a wake-up)
    than in storing it, and the thread's every return to the loop held up the requests.
    """

    def __init__(self, inbox: Inbox, store: StoreThread, *, stored: Callable[[], None]) -> None:
        self._inbox = inbox
        self._store = store
        self._stored = stored  # wakes the delivery loop
        self._waiting: Waiting = []

    async def add(self, source: str, dedup_key: str, payload: str) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append(((source, dedup_key, payload), future))
        new = await future
        if new:
            self._stored()
        return new

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            written = self._store.write(self._inbox.add_many, [push for push, _ in waiting])
        except Exception as exc:  # not even submitted: each push is answered 503
            _settle(waiting, exc)
        else:
            written.add_done_callback(lambda done: _settle(waiting, _outcome(done)))


def _outcome(done: asyncio.Future[list[bool]]) -> list[bool] | BaseException:
    if done.cancelled():
        return asyncio.CancelledError()
    return done.exception() or done.result()


def _settle(waiting: Waiting, outcome: list[bool] | BaseException) -> None:
    """Each push's outcome: new or a repeat, or the write's exception (then none was stored)."""
    for index, (_, future) in enumerate(waiting):
        if future.done():  # its request was cancelled: no one is waiting for the answer
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[index])


def inbound_routes(settings: InboundSettings, store: Store) -> list[Route]:
    routes = []
    if settings.apna.enabled:
        routes.append(Route(settings.apna.path, _apna_handler(settings, store), methods=["POST"]))
    if settings.pop.enabled:
        path = settings.pop.path.rstrip("/") + "/{application_id}"
        routes.append(
            Route(path, _pop_handler(settings, store), methods=list(settings.pop.methods))
        )
    if routes:
        from worker.inbound.openapi import PATH, inbound_openapi

        document = inbound_openapi(settings)

        async def contract(_: Request) -> Response:
            return JSONResponse(document)

        routes.append(Route(PATH, contract, methods=["GET"]))
    return routes


def _apna_handler(
    settings: InboundSettings, store: Store
) -> Callable[[Request], Awaitable[Response]]:
    apna = settings.apna
    assert apna.auth is not None
    check_auth = _authenticator(apna.auth)
    networks = _networks(apna.allow_ips)
    answer = _answer(APNA_SUCCESS)

    async def receive(request: Request) -> Response:
        if not _allowed(request, networks):
            return _refuse("apna", 403, "source address not allowed")
        if not check_auth(request):
            headers = (
                {"WWW-Authenticate": 'Basic realm="hirebridge"'}
                if apna.auth and apna.auth.type == "basic"
                else {}
            )
            return _refuse("apna", 401, "unauthorised", headers)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _refuse("apna", 415, "Content-Type must be application/json")
        try:
            body = await _read(request, settings.max_body_bytes)
        except TooLarge:
            return _refuse("apna", 413, f"body over {settings.max_body_bytes} bytes")
        except Abandoned:
            return _refuse("apna", 408, "the body did not arrive in full")
        lead, problems = lead_problems(body)
        if problems:
            log.warning("lead_refused", problems=problems)
            metrics.INBOUND.labels("apna", "invalid").inc()
            alerts.push_refused(source="apna", problems=problems)
            return JSONResponse(
                {"status": "error", "message": "invalid lead", "errors": problems}, 400
            )
        canonical = _canonical(lead)
        key = hashlib.sha256(canonical.encode()).hexdigest()
        return await _store(store, "apna", key, canonical, answer)

    return receive


def _pop_handler(
    settings: InboundSettings, store: Store
) -> Callable[[Request], Awaitable[Response]]:
    pop = settings.pop
    assert pop.auth is not None
    expected = pop.auth.get_secret_value().encode()
    networks = _networks(pop.allow_ips)
    answer = _answer({"status": "ok"})
    headers = {
        name.lower(): value.get_secret_value().encode()
        for name, value in pop.notify_headers.items()
    }

    async def notify(request: Request) -> Response:
        if not _allowed(request, networks):
            return _refuse("pop", 403, "source address not allowed")
        given = _basic(request)
        ok = hmac.compare_digest(given or b"", expected) and given is not None
        for name, value in headers.items():
            ok = hmac.compare_digest(request.headers.get(name, "").encode(), value) and ok
        if not ok:
            return _refuse("pop", 401, "unauthorised")
        application_id = request.path_params["application_id"]
        if not valid_application_id(application_id):
            return _refuse("pop", 400, "the application id is not a 64-bit integer")
        try:
            body = await _read(request, settings.max_body_bytes)
        except TooLarge:
            return _refuse("pop", 413, f"body over {settings.max_body_bytes} bytes")
        except Abandoned:
            return _refuse("pop", 408, "the body did not arrive in full")
        details, problem = _details(body, application_id)
        if problem is not None:
            alerts.push_refused(source="pop", problems=[{"field": "(body)", "message": problem}])
            return _refuse("pop", 400, problem)
        report = (details or {}).get("report_id")
        key = f"{application_id}:{'' if report is None else report}"
        payload = {"application_id": application_id, "method": request.method, "details": details}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return await _store(store, "pop", key, text, answer)

    return notify


def _details(body: bytes, application_id: str) -> tuple[dict[str, Any] | None, str | None]:
    if not body.strip():
        return None, None
    try:
        details = parse_json(body)
    except BodyError as exc:
        return None, str(exc)
    if not isinstance(details, dict):
        return None, "the body is not a JSON object"
    named = details.get("application_id")
    if named is not None and str(named) != application_id:
        return None, "application_id in the body differs from the one in the URL"
    report = details.get("report_id")
    if report is not None and not valid_report_id(report):
        return None, "report_id is not a string or integer of 1 to 64 visible ASCII characters"
    return details, None


async def _store(store: Store, source: str, key: str, payload: str, ok: bytes) -> Response:
    try:
        new = await store(source, key, payload)
    except Exception as exc:  # any database failure: the sender must retry
        log.error("push_not_stored", source=source, error=type(exc).__name__)
        metrics.INBOUND.labels(source, "not_stored").inc()
        alerts.push_not_stored(source=source, error=type(exc).__name__)
        return JSONResponse({"status": "error", "message": "cannot store it now; retry"}, 503)
    _counter(source, "stored" if new else "repeat").inc()
    log.info("push_stored", source=source, key=key[:16], repeat=not new)
    return Response(ok, media_type="application/json")


@functools.cache
def _counter(source: str, outcome: str) -> Any:
    """``metrics.INBOUND.labels(...)``, looked up once per outcome rather than per push."""
    return metrics.INBOUND.labels(source, outcome)


def _answer(content: dict[str, str]) -> bytes:
    """The body ``JSONResponse(content)`` sends, rendered once."""
    return bytes(JSONResponse(content).body)


def _refuse(
    source: str, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    metrics.INBOUND.labels(source, f"refused_{status}").inc()
    log.warning("push_refused", source=source, http_status=status, reason=message)
    return JSONResponse({"status": "error", "message": message}, status, headers=headers)


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    # What ``request.stream()`` does, without an async generator in the way of every push.
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # it hung up, or the server's deadline came
            raise Abandoned
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _authenticator(auth: InboundAuthSettings) -> Callable[[Request], bool]:
    if auth.type == "basic":
        password = auth.password.get_secret_value() if auth.password else ""
        expected = f"{auth.username}:{password}".encode()
        return lambda request: hmac.compare_digest(_basic(request) or b"\0", expected)
    if auth.type == "bearer":
        token = (auth.token.get_secret_value() if auth.token else "").encode()

        def bearer(request: Request) -> bool:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            ok = scheme.lower() in ("bearer", "token")
            return hmac.compare_digest(given.strip().encode(), token) and ok

        return bearer
    key = (auth.api_key.get_secret_value() if auth.api_key else "").encode()
    name = auth.header_name
    return lambda request: hmac.compare_digest(request.headers.get(name, "").encode(), key)


def _basic(request: Request) -> bytes | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _networks(cidrs: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def _allowed(
    request: Request, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    if not networks:
        return True
    if request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in network for network in networks)
