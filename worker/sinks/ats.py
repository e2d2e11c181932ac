"""An ATS's ERP Integration API: health, create-job, update-job (``shared/seeds/002_*``).

Every call sends ``action`` and ``source_name`` and the API key (``X-API-Key`` header or
``api_key`` query parameter). Replies are ``{status, message, data, processing_time}``. Errors
are classified by the guide's table: 400 (MISSING_FIELD, INVALID_TYPE, INVALID_URL) is this
job's problem; 401 and 403 (IP_NOT_ALLOWED) and 404 (INVALID_SOURCE) condemn every call, so the
run stops; 409 (JOB_EXISTS) is reconciled by the caller; 5xx and timeouts are retried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import httpx
import jmespath

from worker.errors import PermanentError
from worker.remote.http import Reply, exchange, raise_for_status
from worker.remote.retry import with_retries
from worker.settings import AtsSettings

JOB_TYPES = ("FULL_TIME", "PART_TIME", "CONTRACT", "INTERNSHIP", "FACULTY", "TEMPORARY")
WORKPLACE_TYPES = ("ON_SITE", "REMOTE", "HYBRID")
STATUSES = ("DRAFT", "PUBLISHED", "CLOSED", "ARCHIVED")
TEXT_FIELDS = ("title", "department", "location_city", "location_state", "location_country",
               "description", "qualifications", "salary_range", "benefits", "application_url",
               "application_deadline", "application_instructions")  # fmt: skip
ENUMS = {"job_type": JOB_TYPES, "workplace_type": WORKPLACE_TYPES, "status": STATUSES}
FIELDS = (*TEXT_FIELDS, *ENUMS, "auto_publish")
REQUIRED = ("title", "application_url")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class AtsRefused(PermanentError):
    """The ATS refused the call; ``code`` is its error code (MISSING_FIELD, ...) if it gave one."""

    def __init__(self, message: str, *, status: int, code: str | None, stage: str) -> None:
        super().__init__(message, system="ats", status=status, stage=stage)
        self.code = code

    @property
    def stops_the_run(self) -> bool:
        """Credentials, a source address or a source name the ATS does not accept."""
        return self.status in (401, 403) or (self.status == 404 and self.code != "JOB_NOT_FOUND")


class JobExists(AtsRefused):
    def __init__(self, message: str, *, job_id: str | None, stage: str) -> None:
        super().__init__(message, status=409, code="JOB_EXISTS", stage=stage)
        self.job_id = job_id


@dataclass(frozen=True, slots=True)
class AtsJob:
    job_id: str
    status: str | None


def job_problems(payload: Any) -> list[str]:
    """What the ATS would refuse in a mapped job, checked before anything is sent."""
    if not isinstance(payload, dict):
        return ["(job): the map must give an object"]
    problems = [f"{name}: required" for name in REQUIRED if not payload.get(name)]
    for name, value in payload.items():
        if name not in FIELDS:
            problems.append(f"{name}: not a field of the ATS's job (see the guide's field list)")
        elif name in ENUMS and value not in ENUMS[name]:
            problems.append(f"{name}: {value!r} is not one of {', '.join(ENUMS[name])}")
        elif name == "auto_publish" and not isinstance(value, bool):
            problems.append("auto_publish: must be true or false")
        elif name in TEXT_FIELDS and not isinstance(value, str):
            problems.append(f"{name}: must be a string")
    url = payload.get("application_url")
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append("application_url: not an http(s) URL")
    deadline = payload.get("application_deadline")
    if isinstance(deadline, str):
        try:
            if not _DATE.match(deadline):
                raise ValueError
            date.fromisoformat(deadline)
        except ValueError:
            problems.append("application_deadline: not a YYYY-MM-DD date")
    return problems


class AtsClient:
    def __init__(self, settings: AtsSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._base = settings.base_url.rstrip("/") + "/"
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        in_header = settings.api_key_in == "header"
        self._headers = {"X-API-Key": key} if in_header else {}
        self._params = {} if in_header else {"api_key": key}
        self._conflict_id = jmespath.compile(settings.conflict_job_id_path)

    async def health(self) -> dict[str, Any]:
        reply = await self._call("GET", "health/", None, stage="health")
        data = reply.json()
        if not isinstance(data, dict) or data.get("status") != "healthy":
            state = data.get("status") if isinstance(data, dict) else "unreadable"
            raise PermanentError(f"ATS health is {state!r}", system="ats", stage="health")
        return data

    async def create(self, job: dict[str, Any]) -> AtsJob:
        body = {k: v for k, v in job.items() if k != "status"}
        return await self._job_call("create-job/", {"action": "create_job", **body}, "create")

    async def update(self, job_id: str, job: dict[str, Any]) -> AtsJob:
        body = {k: v for k, v in job.items() if k != "auto_publish"}
        payload = {"action": "update_job", **body, "job_id": job_id}
        return await self._job_call("update-job/", payload, "update")

    async def _job_call(self, path: str, payload: dict[str, Any], stage: str) -> AtsJob:
        body = {**payload, "source_name": self._settings.source_name}
        reply = await self._call("POST", path, body, stage=stage)
        data = reply.json()
        job = data.get("data") if isinstance(data, dict) else None
        job_id = job.get("job_id") if isinstance(job, dict) else None
        if not isinstance(data, dict) or data.get("status") != "success" or not job_id:
            problem = f"{stage}-job: a {reply.status} reply without status success and data.job_id"
            raise PermanentError(problem, system="ats", status=reply.status, stage=stage)
        return AtsJob(str(job_id), job.get("status") if isinstance(job, dict) else None)

    async def _call(self, method: str, path: str, body: Any, *, stage: str) -> Reply:
        async def once() -> Reply:
            reply = await exchange(
                self._client, method, self._base + path, system="ats", stage=stage, route=path,
                timeout=self._settings.retry.timeout_seconds,
                headers={**self._headers, "Accept": "application/json"},
                params=self._params or None, json_body=body,
            )  # fmt: skip
            if reply.status in (400, 401, 403, 404, 409):
                raise self._refusal(reply, stage)
            raise_for_status(reply, success=frozenset({200, 201}), retry_after_cap=300.0)
            return reply

        return await with_retries(once, self._settings.retry)

    def _refusal(self, reply: Reply, stage: str) -> AtsRefused:
        try:
            data = reply.json()
        except PermanentError:
            data = None
        body = data if isinstance(data, dict) else {}
        code = body.get("error_code") or body.get("code")
        code = str(code) if code else None
        message = str(body.get("message") or f"HTTP {reply.status}")[:300]
        text = f"HTTP {reply.status} {code or ''}: {message}".replace("  ", " ")
        if reply.status == 409:
            found = self._conflict_id.search(data) if data is not None else None
            return JobExists(text, job_id=str(found) if found else None, stage=stage)
        return AtsRefused(text, status=reply.status, code=code, stage=stage)
