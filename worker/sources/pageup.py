"""PageUp Hire API client: OAuth2 client credentials, the offers queue and the offer documents,
and a job's applications with their applicants (the applications flow).

Paths, the ``offerActionTypeId``, where ids sit in a response, and paging are settings (see
``shared/pageup-hire-api.md``: most of it is not published). Each method returns plain JSON;
the mapping engine, not this client, decides what the documents mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import jmespath
import structlog

from worker.errors import PermanentError
from worker.remote.http import Observer, Reply, exchange, raise_for_status
from worker.remote.retry import with_retries
from worker.remote.tokens import ClientCredentials
from worker.settings import PageUpSettings
from worker.sources.paging import numbered_pages

log = structlog.get_logger(__name__)
SYSTEM = "pageup"
_OK = frozenset({200})
_MARKED = frozenset({200, 201, 202, 204})
_ENVELOPE_KEYS = ("Offers", "offers", "Items", "items", "Data", "data", "Results", "results")
_APPLICATION_KEYS = ("Applications", "applications", *_ENVELOPE_KEYS[2:])


@dataclass(frozen=True, slots=True)
class OfferRef:
    """One entry of the offers queue."""

    offer_id: str
    application_id: str | None


@dataclass(frozen=True, slots=True)
class OfferListing:
    """The run's snapshot of the queue, and the entries that could not be read (where each
    was, and the entry itself, to recognise it on the next listing; never logged)."""

    offers: list[OfferRef]
    invalid_entries: list[tuple[str, Any]]


def reference_id(value: Any) -> str | None:
    """A PUReferenceID as text, or None if it is missing or not an id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 64:
        return value.strip()
    return None


class PageUpClient:
    """Talks to one PageUp tenant. Share one instance per run (it caches the token)."""

    def __init__(
        self, settings: PageUpSettings, client: httpx.AsyncClient, observe: Observer | None = None
    ) -> None:
        """``observe`` is told of every failed call (the error log for PageUp support)."""
        self.settings = settings
        self._observe = observe
        self._settings = settings
        self._client = client
        self._base = settings.resolved_api_base_url
        self._offer_id = jmespath.compile(settings.offer_id_path)
        self._application_id = jmespath.compile(settings.application_id_path)
        self._items = (
            jmespath.compile(settings.list_items_path) if settings.list_items_path else None
        )
        self._document_url = jmespath.compile(settings.document_url_path)
        items_path = settings.applications.list_items_path
        self._application_items = jmespath.compile(items_path) if items_path else None
        self.tokens = ClientCredentials(
            client,
            token_url=settings.resolved_token_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            scope=" ".join(settings.requested_scopes) or None,
            system=SYSTEM,
            retry=settings.retry,
            refresh_margin=settings.token_refresh_margin_seconds,
            retry_after_cap=settings.retry_after_cap_seconds,
            observe=observe,
        )

    async def list_offers(self) -> OfferListing:
        """Every offer in the queue now, all pages read before anything is marked processed."""
        refs: list[OfferRef] = []
        invalid: list[tuple[str, Any]] = []
        seen: set[str] = set()
        path = self._settings.paths.offers
        pages = await self._list_pages(path, path, "list_offers", self._items, _ENVELOPE_KEYS)
        for page_number, entries in enumerate(pages):
            for index, entry in enumerate(entries):
                ref = self._offer_ref(entry)
                if ref is None:
                    invalid.append((f"page {page_number + 1} entry {index + 1}", entry))
                elif ref.offer_id not in seen:
                    seen.add(ref.offer_id)
                    refs.append(ref)
        return OfferListing(refs, invalid)

    def application_id_of(self, document: Any) -> str | None:
        """Where the application id sits in an offers-list entry or an offer."""
        return reference_id(self._application_id.search(document))

    async def get_offer(self, offer_id: str) -> Any:
        template = self._settings.paths.offer
        path = template.format(offer_id=offer_id)
        return (await self._call("GET", path, "fetch_offer", route=template)).json()

    async def get_onboarding_form(self, offer_id: str) -> Any:
        template = self._settings.paths.onboarding_form
        path = template.format(offer_id=offer_id)
        return (await self._call("GET", path, "fetch_onboarding_form", route=template)).json()

    async def get_application_form(self, application_id: str) -> Any:
        template = self._settings.paths.application_form
        path = template.format(application_id=application_id)
        reply = await self._call("GET", path, "fetch_application_form", route=template)
        return reply.json()

    async def document_url(self, document_id: str) -> str:
        """A download link for an offer document (ASSUMED: a JSON reply holding it at
        ``document_url_path``). It may be a short-lived link to another host: it is never
        logged, and PageUp's token is never sent to it."""
        template = self._settings.paths.document
        path = template.format(document_id=document_id)
        try:
            reply = await self._call("GET", path, "fetch_document_url", route=template)
        except PermanentError as exc:  # say which document, not only what PageUp answered
            raise PermanentError(
                f"document {document_id}: PageUp's document endpoint answers {exc}",
                system=SYSTEM, status=exc.status, stage="fetch_document_url",
                record_ids=(document_id,),
            ) from None  # fmt: skip
        url = self._document_url.search(reply.json())
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise PermanentError(
                f"document {document_id}: PageUp's reply holds no download link at "
                f"{self._settings.document_url_path} (setting document_url_path)",
                system=SYSTEM,
                status=reply.status,
                stage="fetch_document_url",
                record_ids=(document_id,),
            )
        return url

    async def mark_processed(self, offer_id: str) -> None:
        """Tell PageUp the offer is done, so it leaves the queue."""
        template = self._settings.paths.mark_processed
        path = template.format(offer_id=offer_id)
        params: dict[str, str | int] = {}
        if self._settings.offer_action_type_id is not None:
            params["offerActionTypeId"] = self._settings.offer_action_type_id
        await self._call(
            "POST", path, "mark_processed", route=template, params=params, success=_MARKED
        )

    async def list_applications(self, job_id: str, *, external: bool = False) -> list[list[Any]]:
        """Every page of a job's applications (``GET jobs/{jobId}/applications``), by its lJobID
        or (``external``) its sExternalJobID; each page a list of entries as PageUp gave them."""
        paths = self._settings.paths
        template = paths.external_job_applications if external else paths.job_applications
        path = template.format(job_id=job_id)
        items, keys = self._application_items, _APPLICATION_KEYS
        return await self._list_pages(path, template, "list_applications", items, keys)

    async def get_applicant(self, applicant_id: str) -> Any:
        template = self._settings.paths.applicant
        path = template.format(applicant_id=applicant_id)
        return (await self._call("GET", path, "fetch_applicant", route=template)).json()

    async def _list_pages(
        self, path: str, route: str, stage: str, items: Any, keys: tuple[str, ...]
    ) -> list[list[Any]]:
        """Every page of a list (the source's ``paging`` settings), read before anything is
        done with it."""
        paging = self._settings.paging
        what = stage.removeprefix("list_")
        if paging.mode == "none":
            reply = await self._call("GET", path, stage, route=route)
            return [self._entries(reply, items, keys, stage, what)]
        if paging.mode == "page_number":

            async def numbered(page: int) -> list[Any]:
                params: dict[str, str | int] = {paging.page_param: page,
                                                paging.size_param: paging.page_size}  # fmt: skip
                reply = await self._call("GET", path, stage, route=route, params=params)
                return self._entries(reply, items, keys, stage, what)

            pages, cut_short = await numbered_pages(
                numbered, first=paging.first_page, size=paging.page_size,
                max_pages=paging.max_pages, read_ahead=paging.read_ahead,
            )  # fmt: skip
        else:
            pages, cut_short = await self._linked_pages(path, route, stage, items, keys, what)
        if cut_short:
            log.error("list_page_limit", stage=stage, max_pages=paging.max_pages)
            if stage != "list_offers":  # a partial list of applications would look like deletions
                raise PermanentError(
                    f"the {what} list has more than paging.max_pages ({paging.max_pages}) pages",
                    system=SYSTEM, stage=stage,
                )  # fmt: skip
        return pages

    async def _linked_pages(
        self, path: str, route: str, stage: str, items: Any, keys: tuple[str, ...], what: str
    ) -> tuple[list[list[Any]], bool]:
        """Pages that each name the next (a cursor): one after another."""
        paging = self._settings.paging
        pages: list[list[Any]] = []
        url: str | None = path
        for _ in range(paging.max_pages):
            if url is None:
                return pages, False
            # A next link is PageUp's, its query (a cursor) kept whole: httpx would replace it
            # with even empty params. The route is the list's path.
            reply = await self._call("GET", url, stage, route=route)
            pages.append(self._entries(reply, items, keys, stage, what))
            link = jmespath.search(paging.next_link_path, reply.json())
            url = self._next_url(link, stage) if isinstance(link, str) and link else None
        return pages, url is not None

    def _next_url(self, link: str, stage: str) -> str:
        """A next link as PageUp may give it (absolute, rooted at the host, or relative to the
        API base), made absolute; one leading to another host is refused, since our token
        would go with it."""
        base = httpx.URL(self._base)
        url = base.join(link)
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise PermanentError(
                f"the next page link leads to {url.scheme}://{url.host}, not to PageUp's API "
                f"({base.scheme}://{base.host}): not followed (paging.next_link_path)",
                system=SYSTEM, stage=stage,
            )  # fmt: skip
        return str(url)

    @staticmethod
    def _entries(
        reply: Reply, items: Any, keys: tuple[str, ...], stage: str, what: str
    ) -> list[Any]:
        data = reply.json()
        if items is not None:
            data = items.search(data)
        elif isinstance(data, dict):
            data = next((data[k] for k in keys if isinstance(data.get(k), list)), data)
        if not isinstance(data, list):
            raise PermanentError(
                f"{what} list is neither a JSON array nor an envelope holding one",
                system=SYSTEM,
                status=reply.status,
                stage=stage,
            )
        return data

    def _offer_ref(self, entry: Any) -> OfferRef | None:
        offer_id = reference_id(self._offer_id.search(entry)) if isinstance(entry, dict) else None
        if offer_id is None:
            return None
        return OfferRef(offer_id, self.application_id_of(entry))

    async def _call(
        self,
        method: str,
        path: str,
        stage: str,
        *,
        route: str,
        params: dict[str, str | int] | None = None,
        success: frozenset[int] = _OK,
    ) -> Reply:
        url = path if path.startswith(("http://", "https://")) else self._base + path.lstrip("/")

        async def once() -> Reply:
            for attempt in (1, 2):
                header = await self.tokens.header()
                reply = await exchange(
                    self._client,
                    method,
                    url,
                    system=SYSTEM,
                    stage=stage,
                    route=route,
                    timeout=self._settings.retry.timeout_seconds,
                    headers={"Authorization": header, "Accept": "application/json"},
                    params=params,
                    observe=self._observe,
                )
                if reply.status == 401 and attempt == 1:
                    # Expired or revoked early: refresh once and retry once.
                    log.info("token_rejected", system=SYSTEM, stage=stage)
                    self.tokens.invalidate(header)
                    continue
                raise_for_status(
                    reply, success=success, retry_after_cap=self._settings.retry_after_cap_seconds
                )
                return reply
            raise AssertionError("unreachable")  # pragma: no cover

        return await with_retries(once, self._settings.retry)
