"""A PageUp Hire API simulator: token endpoint, the offers queue and the offer documents, and
the download links of the offers' documents (``GET /document/{id}``), which point at a storage
listener of their own (``worker.simulators.storage``).

Queue semantics as PageUp documents them: ``GET /offers`` lists accepted, form-complete,
unprocessed offers; an offer leaves the queue once marked processed. Faults (latency, 5xx, 429,
short-lived tokens) are drawn from a seeded random generator, so runs are repeatable.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.pageup_applications import SimApplications, application_routes
from worker.simulators.sample import SampleOffer, make_offers
from worker.simulators.storage import SimDocument, StorageState

API = "/v3/{tenant}/recruitment/hire"


@dataclass
class PageUpFaults:
    latency_seconds: float = 0.0
    error_rate: float = 0.0  # share of API calls answered 503
    rate_limit_every: int = 0  # every Nth API call answered 429 (0: never)
    retry_after: str | None = "1"
    token_lifetime_seconds: float = 300.0
    page_size: int | None = None  # cap the offers list (None: everything)
    envelope: bool = False  # wrap lists as {"Offers": [...], "Paging": {...}}
    seed: int = 1


@dataclass
class PageUpState:
    tenant: str = "218"
    client_id: str = "hirebridge-sim"
    client_secret: str = "sim-secret"  # noqa: S105 (a simulator credential, not a secret)
    faults: PageUpFaults = field(default_factory=PageUpFaults)
    offers: dict[str, SampleOffer] = field(default_factory=dict)
    processed: Counter[str] = field(default_factory=Counter)
    action_types: list[str | None] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, float] = field(default_factory=dict)
    on_mark: Callable[[str], None] | None = None  # called with the offer id before marking it
    on_fetch: Callable[[str], None] | None = None  # called with the offer id of GET /offers/{id}
    # offer id -> how its detail is broken: html, invalid_json, non_utf8, not_object, huge,
    # null, array
    corrupt: dict[str, str] = field(default_factory=dict)
    # offer id -> how its new-starter form is broken: null, array, answers_object
    corrupt_onboarding: dict[str, str] = field(default_factory=dict)
    # (document, id asked for) -> the id whose document is served instead; document is
    # "offer", "onboarding" or "application" (a PageUp answering about the wrong record)
    misdirect: dict[tuple[str, str], str] = field(default_factory=dict)
    # Entries appended to every listing, as a PageUp with a bad record would (no id...).
    junk_entries: list[Any] = field(default_factory=list)
    # offer id -> (status, JSON body) that GET /offers/{id} answers instead of the offer
    refuse_offer: dict[str, tuple[int, Any]] = field(default_factory=dict)
    # Headers added to every error answer (besides X-Request-Id, numbered per tenant: ASSUMED,
    # PageUp does not document a request id header)
    error_headers: dict[str, str] = field(default_factory=dict)
    # When each offer entered the queue and was first marked (wall clock): its lag.
    loaded_at: dict[str, float] = field(default_factory=dict)
    marked_at: dict[str, float] = field(default_factory=dict)
    # The documents of the offers, and the storage listener their download links point at.
    storage: StorageState = field(default_factory=StorageState)
    # Jobs with applications, their applicants and forms (the applications flow).
    applications: SimApplications = field(default_factory=SimApplications)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.faults.seed)

    def load(self, offers: list[SampleOffer]) -> None:
        now = time.time()
        for offer in offers:
            self.offers[str(offer.offer_id)] = offer
            self.loaded_at.setdefault(str(offer.offer_id), now)
            for entry in offer.offer.get("Documents") or []:
                key = str(entry["PUReferenceID"])
                self.storage.documents.setdefault(key, SimDocument(key, str(entry["Title"])))

    def queue(self) -> list[SampleOffer]:
        return [o for key, o in self.offers.items() if not self.processed[key]]


def build_app(tenants: PageUpState | Sequence[PageUpState], *, loader: bool = False) -> Starlette:
    """The simulator as an ASGI app, serving one tenant or several on one port (each with its
    own client credentials, tokens, queue and faults). ``loader``: also ``POST /_sim/load``
    (offers enter a tenant's queue now) and ``GET /_sim/marks`` (per tenant, each offer's
    ``[entered, first marked or null, marks, offer id]``), for a benchmark driving the
    simulator from another process."""
    states = [tenants] if isinstance(tenants, PageUpState) else list(tenants)
    by_tenant = {state.tenant: state for state in states}
    by_client = {state.client_id: state for state in states}

    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        state = by_client.get(form.get("client_id", ""))
        if state is not None:
            state.calls["token"] += 1
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if state is None or form.get("client_secret") != state.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        access = secrets.token_urlsafe(24)
        lifetime = state.faults.token_lifetime_seconds
        state.tokens[access] = time.monotonic() + lifetime
        return JSONResponse(
            {
                "access_token": access,
                "expires_in": max(1, int(lifetime)),
                "token_type": "Bearer",
                "scope": form.get("scope", ""),
            }
        )

    def endpoint(name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            state = by_tenant.get(request.path_params.get("tenant", ""))
            if state is None:
                return _errors(404, "Unknown tenant")
            refused = await _gate(state, request, name)
            response = refused if refused is not None else await handler(state, request)
            if response.status_code >= 400:
                response.headers["X-Request-Id"] = f"req-{state.calls.total():06d}-{name}"
                response.headers.update(state.error_headers)
            return response

        return serve

    async def stats(request: Request) -> Response:
        state = by_tenant.get(request.query_params.get("tenant", states[0].tenant))
        if state is None:
            return _errors(404, "Unknown tenant")
        return JSONResponse(
            {
                "calls": dict(state.calls),
                "processed": sum(1 for v in state.processed.values() if v),
                "marked_twice": sum(1 for v in state.processed.values() if v > 1),
                "queue": len(state.queue()),
            }
        )

    async def load(request: Request) -> Response:
        query = request.query_params
        state = by_tenant.get(query.get("tenant", ""))
        if state is None:
            return _errors(404, "Unknown tenant")
        count, first_id = int(query.get("count", "1")), int(query.get("first_id", "900101"))
        state.load(make_offers(count, seed=first_id, first_id=first_id))
        return JSONResponse({"queue": len(state.queue())})

    async def marks(_: Request) -> Response:
        return JSONResponse({
            state.tenant: [[state.loaded_at[key], state.marked_at.get(key), state.processed[key],
                            key] for key in state.offers]
            for state in states
        })  # fmt: skip

    extra = [Route("/_sim/load", load, methods=["POST"]),
             Route("/_sim/marks", marks, methods=["GET"])] if loader else []  # fmt: skip
    routes = [
        *extra,
        Route("/connect/token", token, methods=["POST"]),
        Route(f"{API}/offers", endpoint("list_offers", _list_offers), methods=["GET"]),
        Route(f"{API}/offers/{{offer_id}}", endpoint("get_offer", _get_offer), methods=["GET"]),
        Route(f"{API}/offers/{{offer_id}}/onboardingform",
              endpoint("get_onboarding_form", _get_onboarding), methods=["GET"]),
        Route(f"{API}/offers/{{offer_id}}/process", endpoint("mark_processed", _mark_processed),
              methods=["POST"]),
        Route(f"{API}/applications/{{application_id}}/applicationForm",
              endpoint("get_application_form", _get_application_form), methods=["GET"]),
        Route(f"{API}/document/{{document_id}}", endpoint("get_document", _get_document),
              methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        *application_routes(API, endpoint, _errors),
    ]  # fmt: skip
    return Starlette(routes=routes)


Handler = Callable[[PageUpState, Request], Awaitable[Response]]


async def _gate(state: PageUpState, request: Request, name: str) -> Response | None:
    """Auth, latency and injected faults shared by every API endpoint."""
    state.calls[name] += 1
    faults = state.faults
    if faults.latency_seconds:
        await asyncio.sleep(faults.latency_seconds)
    scheme, _, access = request.headers.get("authorization", "").partition(" ")
    expiry = state.tokens.get(access)
    if scheme.lower() != "bearer" or expiry is None or time.monotonic() >= expiry:
        return _errors(401, "The access token is invalid or has expired")
    if faults.rate_limit_every and state.calls.total() % faults.rate_limit_every == 0:
        state.injected["429"] += 1
        headers = {"Retry-After": faults.retry_after} if faults.retry_after else {}
        return _errors(429, "Daily rate limit exceeded", headers=headers)
    if faults.error_rate and state.rng.random() < faults.error_rate:
        state.injected["503"] += 1
        return JSONResponse({"Message": "An error has occurred."}, status_code=503)
    return None


async def _list_offers(state: PageUpState, request: Request) -> Response:
    queue = state.queue()
    size = state.faults.page_size
    if size is not None and "page" in request.query_params:
        page = max(1, int(request.query_params.get("page", "1")))
        size = int(request.query_params.get("pageSize", str(size)))
        queue = queue[(page - 1) * size : page * size]
    elif size is not None:
        queue = queue[:size]
    entries = [
        {
            "PUReferenceID": o.offer_id,
            "Applications": {"PUReferenceID": o.application_id},
            "OfferAccepted": True,
            "FormComplete": True,
            "OfferProcessed": False,
        }
        for o in queue
    ] + state.junk_entries
    body: Any = {"Offers": entries, "Paging": {}} if state.faults.envelope else entries
    return JSONResponse(body)


def _find(state: PageUpState, request: Request, document: str) -> SampleOffer | None:
    wanted = request.path_params["offer_id"]
    return state.offers.get(state.misdirect.get((document, wanted), wanted))


async def _get_offer(state: PageUpState, request: Request) -> Response:
    offer = _find(state, request, "offer")
    if state.on_fetch is not None:
        state.on_fetch(request.path_params["offer_id"])
    if offer is not None and str(offer.offer_id) in state.corrupt:
        return _corrupt(state.corrupt[str(offer.offer_id)])
    if offer is not None and str(offer.offer_id) in state.refuse_offer:
        status, body = state.refuse_offer[str(offer.offer_id)]
        return JSONResponse(body, status_code=status)
    return JSONResponse(offer.offer) if offer else _errors(404, "Offer not found")


async def _get_onboarding(state: PageUpState, request: Request) -> Response:
    offer = _find(state, request, "onboarding")
    if offer is None:
        return _errors(404, "Offer not found")
    broken = state.corrupt_onboarding.get(str(offer.offer_id))
    if broken is not None:
        return JSONResponse(_broken_form(broken, offer.onboarding))
    return JSONResponse(offer.onboarding)


async def _get_application_form(state: PageUpState, request: Request) -> Response:
    asked = request.path_params["application_id"]
    wanted = state.misdirect.get(("application", asked), asked)
    if wanted in state.applications.forms:
        return JSONResponse(state.applications.forms[wanted])
    for offer in state.offers.values():
        if str(offer.application_id) == wanted:
            return JSONResponse(offer.application_form)
    return _errors(404, "Application not found", field="applicationId")


async def _get_document(state: PageUpState, request: Request) -> Response:
    """A download link on the storage listener (ASSUMED shape: the link in ``Url``)."""
    document_id = request.path_params["document_id"]
    if document_id not in state.storage.documents:
        return _errors(404, "Document not found")
    url = state.storage.issue(document_id)
    body = {"PUReferenceID": int(document_id) if document_id.isdigit() else document_id,
            "Url": url, "ExpiresInSeconds": state.storage.expiry_seconds}  # fmt: skip
    return JSONResponse(body)


async def _mark_processed(state: PageUpState, request: Request) -> Response:
    offer_id = request.path_params["offer_id"]
    if offer_id not in state.offers:
        return _errors(404, "Offer not found")
    if state.on_mark is not None:
        state.on_mark(offer_id)
    if not state.processed[offer_id]:
        state.marked_at[offer_id] = time.time()
    state.processed[offer_id] += 1
    state.action_types.append(request.query_params.get("offerActionTypeId"))
    return Response(status_code=204)


def _errors(
    status: int, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    item = {"message": message} | ({"field": field} if field else {})
    return JSONResponse([item], status_code=status, headers=headers)


def _broken_form(kind: str, form: dict[str, Any]) -> Any:
    if kind == "answers_object":
        return {**form, "Answers": {"QuestionID": 11}}
    return None if kind == "null" else [form]


def _corrupt(kind: str) -> Response:
    """The broken answers real APIs give now and then."""
    json_type = "application/json"
    return {
        "html": Response(b"<html><body>Service Unavailable</body></html>", 200,
                         media_type="text/html"),
        "invalid_json": Response(b'{"PUReferenceID": 1, "Applicant": {', 200, media_type=json_type),
        "non_utf8": Response(b'{"PUReferenceID": "\xff\xfe"}', 200, media_type=json_type),
        "not_object": Response(b'"just a string"', 200, media_type=json_type),
        "huge": Response(b'{"x": "' + b"a" * (9 * 1024 * 1024) + b'"}', 200, media_type=json_type),
        "null": Response(b"null", 200, media_type=json_type),
        "array": Response(b'[{"PUReferenceID": 1}]', 200, media_type=json_type),
    }[kind]  # fmt: skip
