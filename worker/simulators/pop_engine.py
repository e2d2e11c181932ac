"""A POP Engine simulator: the partner API (``score_calc_get``) and the notifier.

The notifier follows the vendor's rules: it calls the account's ``url`` (application id
substituted for ``[___APP_ID___]`` or appended) with ``not_method``, Basic auth from ``auth``,
``not_headers``, and a JSON body when ``ext_notify`` is yes. Only 200 is success; no answer or a
status in ``http_err`` is retried (every second for a minute, every minute for an hour, then
daily); any other status drops the notification for good. ``time_scale`` shrinks that schedule
(0 in tests: the retries follow each other at once).
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.inbound.pop import APP_ID_FIELD, method_of

RETRY_DELAYS = [1.0] * 60 + [60.0] * 60 + [86400.0] * 30


@dataclass
class PopEngineState:
    username: str = "pop-sim-partner"
    password: str = "pop-sim-password"  # noqa: S105 (a simulator credential, not a secret)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)


def build_app(state: PopEngineState) -> Starlette:
    expected = "Basic " + base64.b64encode(f"{state.username}:{state.password}".encode()).decode()

    async def api(request: Request) -> Response:
        state.calls["api"] += 1
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error_code": 401, "error_text": "not authorised"}, 401)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error_code": 2, "error_text": "request is not JSON"})
        if not isinstance(body, dict) or body.get("partner_api") is not True:
            return JSONResponse({"error_code": 2, "error_text": "partner_api must be true"})
        if body.get("command") != "score_calc_get":
            return JSONResponse({"error_code": 1, "error_text": "unknown command"})
        application_id = body.get("application_id")
        if not isinstance(application_id, str):
            return JSONResponse({"error_code": 2, "error_text": "application_id is a string"})
        score = state.scores.get(application_id)
        if score is None:
            return JSONResponse({"error_code": 3, "error_text": "application not found"})
        state.calls["score_calc_get"] += 1
        return JSONResponse({"error_code": 0, "error_text": "", **score})

    return Starlette(routes=[Route("/api/1.0", api, methods=["POST"])])


@dataclass
class Notification:
    statuses: list[int | None] = field(default_factory=list)  # None: no answer
    outcome: str = "pending"  # delivered | dropped | gave_up


@dataclass
class Notifier:
    config: str
    time_scale: float = 1.0
    timeout: float = 10.0
    max_attempts: int = len(RETRY_DELAYS) + 1

    def __post_init__(self) -> None:
        parts = self.config.split("|")
        self.values = dict(zip(parts[::2], parts[1::2], strict=False))
        self.retry_on = {int(s) for s in self.values.get("http_err", "").split(",") if s.strip()}

    def request_for(self, application_id: str, details: dict[str, Any]) -> dict[str, Any]:
        url = self.values["url"]
        url = (url.replace(APP_ID_FIELD, application_id) if APP_ID_FIELD in url
               else f"{url.rstrip('/')}/{application_id}")  # fmt: skip
        auth = base64.b64encode(self.values.get("auth", "").encode()).decode()
        headers = {"Authorization": f"Basic {auth}"}
        raw = self.values.get("not_headers", "")
        items = raw.split(self.values.get("not_sep") or ",") if raw else []
        headers.update(zip(items[::2], items[1::2], strict=False))
        method = method_of(self.values.get("not_method", ""))
        body = details if self.values.get("ext_notify") == "yes" and method != "GET" else None
        return {"method": method, "url": url, "headers": headers, "json": body}

    async def notify(
        self, client: httpx.AsyncClient, application_id: str, details: dict[str, Any]
    ) -> Notification:
        request = self.request_for(application_id, details)
        result = Notification()
        for attempt in range(self.max_attempts):
            try:
                reply = await client.request(**request, timeout=self.timeout)
                status: int | None = reply.status_code
            except httpx.HTTPError:
                status = None
            result.statuses.append(status)
            if status == 200:
                result.outcome = "delivered"
                return result
            if status is not None and status not in self.retry_on:
                result.outcome = "dropped"
                return result
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt] * self.time_scale)
        result.outcome = "gave_up"
        return result
