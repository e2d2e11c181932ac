"""The generic HRIS the example maps target (no vendor): ``POST /api/employees`` with an
``X-API-Key``, ``{"id": ...}`` and a Location header; ``GET /api/employees?externalId=`` (the
upsert look-up), ``PUT /api/employees/{id}``, ``POST /api/employees/{id}/{bank-accounts|
tax-declaration|superannuation}`` for multi-step maps, ``/api/employees/{id}/documents`` (a
file as JSON with base64 content, honouring the Idempotency-Key, and the list with each file's
SHA-256) for offer documents, and ``/api/intake/{collection}`` for inbound pushes. Refusals are
``422 {"errors": [{"field", "message"}]}``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.hris.core import HrisState, Server, missing
from worker.simulators.hris.files import keep

SUB_RESOURCES = ("bank-accounts", "tax-declaration", "superannuation")
NOT_JSON = JSONResponse({"message": "body is not JSON"}, status_code=400)


def problems(fields: list[tuple[str, str]]) -> Response:
    return JSONResponse(
        {"errors": [{"field": f, "message": m} for f, m in fields]}, status_code=422
    )


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]


class Generic:
    name = "generic"
    path = "/api/employees"
    required: tuple[str, ...] = ("externalId", "firstName", "lastName", "startDate")

    def authorise(self, request: Request, state: HrisState) -> Response | None:
        if request.headers.get("x-api-key") == state.api_key:
            return None
        return JSONResponse({"message": "not authorised"}, status_code=401)

    def routes(self, server: Server) -> list[Route]:
        state = server.state

        async def create(request: Request) -> Response:
            early = await server.entry(request, "post")
            if early is not None:
                return early
            payload, ok = await server.read(request)
            if not ok:
                return NOT_JSON
            if not isinstance(payload, dict):
                return problems([("(body)", "must be a JSON object")])
            absent = missing(payload, state.required or self.required)
            if absent:
                return problems([(name, "is required") for name in absent])
            if str(payload.get("externalId")) in state.refuse_echoing:
                return problems([(name, f"{value!r} is not valid")
                                 for name, value in _leaves(payload)])  # fmt: skip
            record_id = state.store(payload, str(payload.get("externalId")))
            body = {"id": record_id, "status": "created"}
            response = server.remember(request, 201, body, {"Location": f"{self.path}/{record_id}"})
            await server.maybe_slow()
            return response

        async def find(request: Request) -> Response:
            state.calls["find"] += 1
            early = await server.gate(request)
            if early is not None:
                return early
            wanted = request.query_params.get("externalId")
            items = [
                {"id": record_id, "externalId": record.get("externalId")}
                for record_id, record in state.records.items()
                if wanted is not None and str(record.get("externalId")) == wanted
            ]
            return JSONResponse({"items": items})

        async def update(request: Request) -> Response:
            early = await server.entry(request, "put")
            if early is not None:
                return early
            record_id = request.path_params["record_id"]
            if record_id not in state.records:
                return JSONResponse({"message": "no such employee"}, status_code=404)
            payload, ok = await server.read(request)
            if not ok:
                return NOT_JSON
            state.records[record_id] = payload
            return server.remember(request, 200, {"id": record_id, "status": "updated"})

        async def add_child(request: Request) -> Response:
            kind = request.path_params["kind"]
            early = await server.entry(request, f"post_{kind}")
            if early is not None:
                return early
            record_id = request.path_params["record_id"]
            if kind not in SUB_RESOURCES or record_id not in state.records:
                return JSONResponse({"message": "not found"}, status_code=404)
            payload, ok = await server.read(request)
            if not ok:
                return NOT_JSON
            state.children.setdefault(record_id, []).append((kind, payload))
            count = sum(len(c) for c in state.children.values())
            return server.remember(request, 201, {"id": f"{kind[:3].upper()}-{count:06d}"})

        async def collect(request: Request) -> Response:
            """Record intake (candidate leads, assessment results) for inbound pushes."""
            collection = request.path_params["collection"]
            early = await server.entry(request, f"post_{collection}")
            if early is not None:
                return early
            payload, ok = await server.read(request)
            if not ok:
                return NOT_JSON
            items: list[Any] = state.collected.setdefault(collection, [])
            items.append(payload)
            if state.on_collect is not None:
                state.on_collect(collection, payload)
            intake_id = f"{collection[:4].upper()}-{len(items):06d}"
            return server.remember(request, 201, {"id": intake_id})

        async def add_document(request: Request) -> Response:
            early = await server.entry(request, "post_document")
            if early is not None:
                return early
            record_id = request.path_params["record_id"]
            if record_id not in state.records:
                return JSONResponse({"message": "no such employee"}, status_code=404)
            if state.on_upload is not None:
                state.on_upload("start", record_id)
            payload, ok = await read_json_body(request)
            if not ok or not isinstance(payload, dict):
                return NOT_JSON
            try:
                content = base64.b64decode(str(payload.get("contentBase64", "")), validate=True)
            except (binascii.Error, ValueError):
                return problems([("contentBase64", "is not base64")])
            if not payload.get("fileName") or not content:
                return problems([("fileName", "and contentBase64 are required")])
            kept = keep(state, record_id, name=str(payload["fileName"]), size=len(content),
                        sha256=hashlib.sha256(content).hexdigest(),
                        category=payload.get("category"))  # fmt: skip
            return server.remember(request, 201, {"id": f"DOC-{kept['id']:06d}"})

        async def documents(request: Request) -> Response:
            state.calls["list_documents"] += 1
            early = await server.gate(request)
            if early is not None:
                return early
            kept = state.files.get(request.path_params["record_id"], [])
            items = [{"id": f"DOC-{f['id']:06d}", "fileName": f["name"], "size": f["size"],
                      "sha256": f["sha256"]} for f in kept]  # fmt: skip
            return JSONResponse({"items": items})

        return [
            Route(self.path, create, methods=["POST"]),
            Route(self.path, find, methods=["GET"]),
            Route(self.path + "/{record_id}", update, methods=["PUT"]),
            Route(self.path + "/{record_id}/documents", add_document, methods=["POST"]),
            Route(self.path + "/{record_id}/documents", documents, methods=["GET"]),
            Route(self.path + "/{record_id}/{kind}", add_child, methods=["POST"]),
            Route("/api/intake/{collection}", collect, methods=["POST"]),
        ]


async def read_json_body(request: Request) -> tuple[Any, bool]:
    """The body as JSON (not kept in ``received``: it holds a document's content)."""
    try:
        return json.loads(await request.body()), True
    except ValueError:
        return None, False
