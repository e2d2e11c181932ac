"""An HTTP API that receives mapped records (the payroll/HRIS for offers).

Sends an ``Idempotency-Key`` with every request, so that a retry after an unknown outcome
(a timeout during the post) cannot create a second record in an HRIS that honours it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jmespath
import structlog

from worker.errors import PermanentError
from worker.mapping.requests import Accept, RecordId
from worker.redact import scrub_text
from worker.remote.auth import OutboundAuth
from worker.remote.http import MAX_MESSAGE_CHARS, Reply, exchange, raise_for_status, route_of
from worker.remote.retry import with_retries
from worker.settings import HrisSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Delivered:
    """The destination accepted the record."""

    record_id: str | None
    status: int
    updated: bool = False  # an existing record was found and updated (upsert)


class HttpSink:
    """Posts payloads to one configured endpoint."""

    def __init__(self, settings: HrisSettings, client: httpx.AsyncClient, *, system: str = "hris"):
        self._settings = settings
        self._client = client
        self._system = system
        self._auth = OutboundAuth(settings.auth, client, system=system, retry=settings.retry)
        self._success = frozenset(settings.success_statuses)
        self._id_path = jmespath.compile(settings.id_path) if settings.id_from == "body" else None

    def url_for(self, path: str) -> str:
        """A step's path appended to ``hris.url`` (the API's base when a map has steps)."""
        base = self._settings.url
        return base.rstrip("/") + path if path.startswith("/") else base + path

    def route_for(self, template: str | None) -> str:
        """The route of calls to ``url_for(<template filled in>)``, or to ``hris.url``."""
        return route_of(self.url_for(template) if template else self._settings.url)

    async def look_up(
        self, url: str, id_expression: Any, *, route: str, stage: str = "find"
    ) -> str | None:
        """GET ``url``; the id ``id_expression`` finds in the reply, or None (also on a 404).
        ``route`` is the path template ``url`` was filled from."""
        body = await self.get_json(url, route=route, stage=stage)
        return None if body is None else _as_id(id_expression.search(body))

    async def get_json(self, url: str, *, route: str, stage: str) -> Any:
        """GET ``url`` (with this target's auth and retries); its JSON body, or None on a 404.
        ``route`` is the path template ``url`` was filled from (for breadcrumbs)."""

        async def once() -> Reply:
            for attempt in (1, 2):
                auth = await self._auth.headers()
                headers = {**self._settings.headers, **auth, "Accept": "application/json"}
                reply = await exchange(
                    self._client,
                    "GET",
                    url,
                    system=self._system,
                    stage=stage,
                    route=route,
                    timeout=self._settings.retry.timeout_seconds,
                    headers=headers,
                )
                if reply.status == 401 and attempt == 1 and self._auth.refused(auth):
                    continue
                if reply.status != 404:
                    raise_for_status(reply, success=frozenset({200}), retry_after_cap=300.0)
                return reply
            raise AssertionError("unreachable")  # pragma: no cover

        reply = await with_retries(once, self._settings.retry)
        if reply.status == 404 or not reply.body:
            return None
        return reply.json()

    async def deliver(
        self,
        payload: Any,
        idempotency_key: str,
        *,
        method: str | None = None,
        url: str | None = None,
        route: str | None = None,
        record_id: RecordId | None = None,
        stage: str = "post",
        accept: Accept | None = None,
        options: Any = None,
    ) -> Delivered:
        """Send ``payload`` (to hris.url unless ``url``, filled from the template ``route``);
        retries transient failures with the same idempotency key. ``record_id`` overrides where
        the new record's id is read. ``accept`` (with the map's JMESPath ``options``) must hold
        on a successful reply."""
        if url is not None and route is None:
            raise TypeError("deliver(url=...) needs the route it was filled from")
        reply = await self.send_body(
            url or self._settings.url,
            route=route or self.route_for(None),
            idempotency_key=idempotency_key,
            stage=stage,
            method=method or self._settings.method,
            body=lambda: {"json_body": payload},
        )
        if accept is not None:
            _check_accepted(reply, accept, options)
        return Delivered(self._record_id(reply, record_id), reply.status)

    async def send_body(
        self,
        url: str,
        *,
        route: str,
        idempotency_key: str,
        stage: str,
        method: str,
        body: Callable[[], Mapping[str, Any]],
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send a request whose body ``body()`` gives as ``exchange`` arguments (called afresh
        for every try: a streamed body is read again from its start), with this target's auth,
        headers and idempotency key; transient failures are retried."""

        async def once() -> Reply:
            for attempt in (1, 2):
                auth = await self._auth.headers()
                sent = {
                    **self._settings.headers,
                    **auth,
                    self._settings.idempotency_header: idempotency_key,
                    "Accept": "application/json",
                    **(headers or {}),
                }
                reply = await exchange(
                    self._client,
                    method,
                    url,
                    system=self._system,
                    stage=stage,
                    route=route,
                    timeout=self._settings.retry.timeout_seconds,
                    headers=sent,
                    **body(),
                )
                if reply.status == 401 and attempt == 1 and self._auth.refused(auth):
                    continue
                raise_for_status(reply, success=self._success, retry_after_cap=300.0)
                return reply
            raise AssertionError("unreachable")  # pragma: no cover

        return await with_retries(once, self._settings.retry)

    def record_id_of(self, reply: Reply, rule: RecordId | None) -> str | None:
        """The id a reply gives the record it created (see ``_record_id``)."""
        return self._record_id(reply, rule)

    def _record_id(self, reply: Reply, rule: RecordId | None) -> str | None:
        """The new record's id, from the body or the Location header.

        The record exists once the destination said yes, so a missing id is logged, not raised:
        failing here would make a retry create a duplicate.
        """
        source = rule.source if rule is not None else self._settings.id_from
        id_path = rule.compiled if rule is not None else self._id_path
        record_id: Any = None
        if source == "location":
            location = reply.headers.get("location")
            if location:
                record_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1] or None
        elif source == "body" and id_path is not None and reply.body:
            try:
                record_id = id_path.search(reply.json())
            except PermanentError:
                record_id = None
        found = _as_id(record_id)
        if found is None and source != "none":
            log.warning("record_id_missing", system=self._system, source=source)
        return found


def _check_accepted(reply: Reply, accept: Accept, options: Any) -> None:
    """A success status is not enough for some APIs (OData upserts answer each record's status
    inside an HTTP 200): the map's accept rule decides, and its reason is the remote's message,
    scrubbed of what looks like personal data before anyone logs or stores it."""
    body = reply.json() if reply.body else None
    refusal = accept.refusal(body, options)
    if refusal is not None:
        reason = scrub_text(refusal)[:MAX_MESSAGE_CHARS]
        raise PermanentError(
            f"HTTP {reply.status} but the record was refused: {reason}",
            system=reply.system,
            status=reply.status,
            stage=reply.stage,
        )


def _as_id(value: Any) -> str | None:
    if isinstance(value, int | str) and not isinstance(value, bool) and value != "":
        return str(value)
    return None
