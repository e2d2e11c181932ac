"""BambooHR "Add employee" and the account's option lists.

From BambooHR's public documentation:
- ``POST /api/gateway.php/{companyDomain}/v1/employees``, HTTP Basic with the API key as the
  user name and any password; ``firstName`` and ``lastName`` are required; 201 with the new
  employee's id only in the ``Location`` header;
- errors carry their text in the ``X-BambooHR-Error-Message`` response header;
- ``GET .../v1/meta/lists``: each list field (``fieldId``, ``alias``, ``name``) with its
  ``options`` (``id``, ``name``, ``archived`` "yes"/"no");
- ``POST .../v1/employees/{id}/files``: multipart/form-data with ``category`` (a file category
  id), ``fileName``, ``share`` ("yes"/"no") and the file in a part named ``file``; 201 with the
  new file's URL in ``Location``; under 20 MB; 400 for a missing name or file or an empty file;
- ``GET .../v1/employees/{id}/files/view`` with ``Accept: application/json``: ``categories``,
  each with ``files`` (``id``, ``name``, ``originalFileName``, ``size`` in bytes, ...), no
  checksum; XML without that header; 404 when the employee has no accessible category.

Assumed (not documented): a value outside a list field's options, or a date that is not
``YYYY-MM-DD``, is refused with 400 rather than stored as given; an unknown file category is
refused with 400. BambooHR does not document an idempotency key for uploads, and this flavour
honours none there: a resend after an unknown outcome is settled by the file list.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.hris.core import HrisState, Server, basic_pair, missing
from worker.simulators.hris.files import aclosing_form, digest_of, keep, read_form

DOMAIN_PATH = "/api/gateway.php/acme/v1"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_FIELDS = ("hireDate", "dateOfBirth")
# alias -> option names; the shipped map's lookup tables hold these values.
DEFAULT_LISTS: dict[str, list[Any]] = {
    "department": ["Finance", "Clinical", "Technology", "Retail"],
    "location": ["Sydney Office", "Melbourne Office", "Brisbane Office", "Perth Office"],
    "division": ["Corporate", "Health Services", "Retail Operations"],
    "employmentHistoryStatus": ["Full-Time", "Part-Time", "Contractor"],
    "payType": ["Salary", "Hourly"],
    "payPer": ["Year", "Hour"],
}
ARCHIVED = {"department": "Legacy Sales"}  # an archived option: listed, never valid
# The account's employee file categories (id -> name); the shipped map uses 16 and 17.
FILE_CATEGORIES = {16: "Contracts", 17: "Offer Letters", 18: "Other"}
FILE_EXTENSIONS = ("pdf", "doc", "docx", "png", "jpg", "jpeg", "txt")


def refused(message: str, status: int = 400) -> Response:
    return Response(status_code=status, headers={"X-BambooHR-Error-Message": message})


class BambooHR:
    name = "bamboohr"
    path = f"{DOMAIN_PATH}/employees"
    required: tuple[str, ...] = ("firstName", "lastName")

    def authorise(self, request: Request, state: HrisState) -> Response | None:
        pair = basic_pair(request)
        if pair is not None and pair[0] == state.api_key:
            return None
        return refused("Invalid API key", 401)

    def lists(self, state: HrisState) -> dict[str, list[Any]]:
        return state.lists if state.lists is not None else DEFAULT_LISTS

    def problems(self, payload: Any, state: HrisState) -> list[str]:
        if not isinstance(payload, dict):
            return ["the body must be a JSON object of field names and values"]
        required = state.required or self.required
        found = [f"{name} is required" for name in missing(payload, required)]
        for name, value in payload.items():
            if not isinstance(value, str):
                found.append(f"{name} must be a string")
        lists = self.lists(state)
        for alias, options in lists.items():
            value = payload.get(alias)
            if value is not None and value not in options:
                found.append(f"Invalid value for field {alias}")
        for name in DATE_FIELDS:
            value = payload.get(name)
            if isinstance(value, str) and not _DATE.match(value):
                found.append(f"{name} must be YYYY-MM-DD")
        return found

    def routes(self, server: Server) -> list[Route]:
        state = server.state

        async def create(request: Request) -> Response:
            early = await server.entry(request, "post")
            if early is not None:
                return early
            payload, ok = await server.read(request)
            if not ok:
                return refused("Malformed JSON")
            problems = self.problems(payload, state)
            if problems:
                return refused(", ".join(problems))
            record_id = state.store(payload, str(payload.get("employeeNumber")))
            response = server.remember(request, 201, None, {"Location": f"{self.path}/{record_id}"})
            await server.maybe_slow()
            return response

        async def meta_lists(request: Request) -> Response:
            state.calls["meta_lists"] += 1
            early = await server.gate(request)
            if early is not None:
                return early
            return JSONResponse(list_metadata(self.lists(state)))

        return [
            Route(self.path, create, methods=["POST"]),
            Route(f"{DOMAIN_PATH}/meta/lists", meta_lists, methods=["GET"]),
            *file_routes(self.path, server),
        ]


def file_routes(employees: str, server: Server) -> list[Route]:
    """Upload and list an employee's files."""
    state = server.state

    async def upload(request: Request) -> Response:
        state.calls["post_file"] += 1
        early = await server.gate(request)  # no idempotency replay: BambooHR has none here
        if early is not None:
            return early
        record_id = request.path_params["record_id"]
        if record_id not in state.records:
            return refused("Employee not found", 404)
        if state.on_upload is not None:
            state.on_upload("start", record_id)
        async with aclosing_form(await read_form(request, max_files=1, max_fields=10)) as form:
            file, name = form.get("file"), form.get("fileName")
            category, share = str(form.get("category", "")), form.get("share", "no")
            if isinstance(file, str) or file is None or not isinstance(name, str) or not name:
                return refused("Missing file or fileName")
            if not category.isdigit() or int(category) not in FILE_CATEGORIES:
                return refused("Invalid category")
            if share not in ("yes", "no"):
                return refused("share must be yes or no")
            if name.rsplit(".", 1)[-1].lower() not in FILE_EXTENSIONS:
                return refused("Unsupported file extension")
            size, sha256 = digest_of(file)
            if size == 0 or size > state.max_upload_bytes:
                return refused("File must be between 1 byte and 20MB")
            kept = keep(state, record_id, name=name, originalFileName=file.filename, size=size,
                        sha256=sha256, category=int(category), share=share)  # fmt: skip
        location = f"{employees}/{record_id}/files/{kept['id']}"
        return Response(status_code=201, headers={"Location": location})

    async def listing(request: Request) -> Response:
        state.calls["list_files"] += 1
        early = await server.gate(request)
        if early is not None:
            return early
        record_id = request.path_params["record_id"]
        if record_id not in state.records:
            return refused("Employee not found", 404)
        if "json" not in request.headers.get("accept", ""):
            return Response(b"<employee/>", media_type="text/xml")
        return JSONResponse(files_view(record_id, state.files.get(record_id, [])))

    return [
        Route(employees + "/{record_id}/files", upload, methods=["POST"]),
        Route(employees + "/{record_id}/files/view", listing, methods=["GET"]),
    ]


def files_view(record_id: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """``GET /v1/employees/{id}/files/view`` as BambooHR documents it (JSON)."""
    categories = []
    for category_id, name in FILE_CATEGORIES.items():
        listed = [
            {"id": f["id"], "name": f["name"], "originalFileName": f["originalFileName"],
             "size": f["size"], "dateCreated": "2026-11-26T00:00:00+0000",
             "createdBy": "API user", "shareWithEmployee": f["share"]}
            for f in files if f["category"] == category_id
        ]  # fmt: skip
        categories.append({"id": category_id, "name": name, "canUploadFiles": "yes",
                           "files": listed})  # fmt: skip
    return {"employee": {"id": int(record_id) if record_id.isdigit() else record_id},
            "categories": categories}  # fmt: skip


def list_metadata(lists: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """``GET /v1/meta/lists`` as BambooHR documents it."""
    answer = []
    for field_id, (alias, names) in enumerate(sorted(lists.items()), start=1):
        options = [
            {"id": field_id * 100 + n, "archived": "no", "name": name}
            for n, name in enumerate(names, start=1)
        ]
        if alias in ARCHIVED:
            options.append({"id": field_id * 100 + 99, "archived": "yes", "name": ARCHIVED[alias]})
        answer.append(
            {
                "fieldId": field_id,
                "alias": alias,
                "manageable": "yes",
                "multiple": "no",
                "name": alias,
                "options": options,
            }
        )
    return answer
