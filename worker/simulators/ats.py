"""An ATS simulator implementing the ERP Integration guide (``shared/seeds/002_*``).

Sources carry an API key, trusted IPs and an active flag; job ids look like ``ACME-2026-0001``;
every documented error is produced by the request that deserves it: 400 MISSING_FIELD,
INVALID_TYPE, INVALID_URL; 401 (wrong key, inactive source); 403 IP_NOT_ALLOWED; 404
INVALID_SOURCE; 409 JOB_EXISTS (a job with the same title, not closed or archived, from the
same source). Assumptions beyond the guide, marked so: error bodies carry ``error_code``, a 409
names the existing job in ``data.job_id``, and an update of an unknown job is 404 JOB_NOT_FOUND.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.sinks.ats import ENUMS, FIELDS, TEXT_FIELDS

BASE = "/recruitment/integration/erp/"


@dataclass
class AtsSource:
    api_key: str
    trusted_ips: list[str] = field(default_factory=list)  # empty: any
    active: bool = True


@dataclass
class AtsState:
    prefix: str = "ACME"
    sources: dict[str, AtsSource] = field(
        default_factory=lambda: {"Main_ERP": AtsSource("ats-sim-key")}
    )
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    fail_next: Counter[str] = field(default_factory=Counter)  # path fragment → 503s to answer
    healthy: bool = True
    on_call: Callable[[str], None] | None = None  # called with the action of each job request

    def by_title(self, source: str, title: str) -> str | None:
        for job_id, job in self.jobs.items():
            if job["source_name"] == source and job["title"] == title and job["status"] in (
                "DRAFT", "PUBLISHED"
            ):  # fmt: skip
                return job_id
        return None


def build_app(state: AtsState) -> Starlette:
    def reply(status: int, message: str, data: Any = None, code: str | None = None,
              started: float = 0.0) -> Response:  # fmt: skip
        body: dict[str, Any] = {"status": "success" if status < 400 else "error",
                                "message": message}  # fmt: skip
        if code:
            body["error_code"] = code
        if data is not None:
            body["data"] = data
        body["processing_time"] = round(time.perf_counter() - started, 3) if started else 0.0
        return JSONResponse(body, status_code=status)

    def authenticate(request: Request) -> tuple[str | None, Response | None]:
        key = request.headers.get("x-api-key") or request.query_params.get("api_key")
        name = next((n for n, s in state.sources.items() if s.api_key == key), None)
        if name is None or not state.sources[name].active:
            return None, reply(401, "Invalid API key", code="UNAUTHORIZED")
        trusted = state.sources[name].trusted_ips
        host = request.client.host if request.client else ""
        if trusted and host not in trusted:
            return None, reply(403, "IP not trusted", code="IP_NOT_ALLOWED")
        return name, None

    async def health(_: Request) -> Response:
        state.calls["health"] += 1
        return JSONResponse({
            "status": "healthy" if state.healthy else "unhealthy",
            "timestamp": datetime.now(UTC).isoformat(),
            "services": {"erp_integration": "available", "database": "connected"},
        }, status_code=200 if state.healthy else 503)  # fmt: skip

    async def info(_: Request) -> Response:
        return reply(200, "ERP Integration API", {"version": "1.0", "endpoints": [
            "create-job/", "update-job/", "health/"]})  # fmt: skip

    async def job_call(request: Request, action: str) -> Response:
        started = time.perf_counter()
        state.calls[action] += 1
        if state.on_call is not None:
            state.on_call(action)
        for fragment, left in list(state.fail_next.items()):
            if left > 0 and fragment in request.url.path:
                state.fail_next[fragment] -= 1
                return reply(503, "Service temporarily unavailable", started=started)
        source, refused = authenticate(request)
        if refused is not None or source is None:
            return refused or reply(401, "Invalid API key")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return reply(400, "Body is not JSON", code="INVALID_TYPE", started=started)
        if not isinstance(body, dict):
            return reply(400, "Body must be an object", code="INVALID_TYPE", started=started)
        if body.get("source_name") not in state.sources or body["source_name"] != source:
            return reply(404, "Source not found", code="INVALID_SOURCE", started=started)
        if body.get("action") != action:
            return reply(400, f"action must be {action!r}", code="INVALID_TYPE", started=started)
        required = ("title", "application_url") if action == "create_job" else ("job_id",)
        missing = [name for name in required if not body.get(name)]
        if missing:
            return reply(400, f"Missing field: {missing[0]}", code="MISSING_FIELD",
                         started=started)  # fmt: skip
        problem = _type_problem(body, action)
        if problem is not None:
            code, message = problem
            return reply(400, message, code=code, started=started)
        fields = {k: v for k, v in body.items() if k in FIELDS and k != "auto_publish"}
        if action == "create_job":
            existing = state.by_title(source, body["title"])
            if existing is not None:
                return reply(409, "Job already exists", {"job_id": existing}, code="JOB_EXISTS",
                             started=started)  # fmt: skip
            job_id = f"{state.prefix}-{date.today().year}-{len(state.jobs) + 1:04d}"
            status = "PUBLISHED" if body.get("auto_publish") else "DRAFT"
            state.jobs[job_id] = {"job_type": "FULL_TIME", "workplace_type": "ON_SITE",
                                  "location_country": "United States", **fields,
                                  "source_name": source, "status": status}  # fmt: skip
            data = {"job_id": job_id, "title": body["title"], "status": status,
                    "created_at": datetime.now(UTC).isoformat()}  # fmt: skip
            return reply(201, "Job created successfully", data, started=started)
        job = state.jobs.get(str(body["job_id"]))
        if job is None or job["source_name"] != source:
            return reply(404, "Job not found", code="JOB_NOT_FOUND", started=started)
        job.update(fields)
        data = {"job_id": body["job_id"], "title": job["title"], "status": job["status"],
                "updated_at": datetime.now(UTC).isoformat()}  # fmt: skip
        return reply(200, "Job updated successfully", data, started=started)

    async def create(request: Request) -> Response:
        return await job_call(request, "create_job")

    async def update(request: Request) -> Response:
        return await job_call(request, "update_job")

    return Starlette(routes=[
        Route(BASE, info, methods=["GET"]),
        Route(BASE + "health/", health, methods=["GET"]),
        Route(BASE + "create-job/", create, methods=["POST"]),
        Route(BASE + "update-job/", update, methods=["POST"]),
    ])  # fmt: skip


def _type_problem(body: dict[str, Any], action: str) -> tuple[str, str] | None:
    for name in TEXT_FIELDS:
        if name in body and not isinstance(body[name], str):
            return "INVALID_TYPE", f"{name} must be a string"
    for name, allowed in ENUMS.items():
        if name in body and str(body[name]).upper().replace("-", "_") not in allowed:
            return "INVALID_TYPE", f"{name} must be one of {', '.join(allowed)}"
    if len(str(body.get("title", ""))) > 200:  # a limit of this simulator's, not the guide's
        return "INVALID_TYPE", "title is longer than 200 characters"
    if "auto_publish" in body and not isinstance(body["auto_publish"], bool):
        return "INVALID_TYPE", "auto_publish must be a boolean"
    if "application_deadline" in body:
        try:
            date.fromisoformat(body["application_deadline"])
        except ValueError:
            return "INVALID_TYPE", "application_deadline must be YYYY-MM-DD"
    if "application_url" in body:
        parts = urlsplit(body["application_url"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "INVALID_URL", "Invalid application URL"
    if action == "create_job" and "status" in body:
        return "INVALID_TYPE", "status is set by auto_publish on create"
    return None
