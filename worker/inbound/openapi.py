"""The inbound endpoints' contract as OpenAPI 3.1, for the pushing partners (Apna, the POP
Engine): built from this deployment's settings (paths, authentication, methods, body limit)
and from the lead model the endpoint validates with, so it cannot drift from the code.
Served at ``GET /inbound/openapi.json``; it holds no secret."""

from __future__ import annotations

from typing import Any

from worker import __version__
from worker.inbound.apna import ApnaLead
from worker.settings import InboundSettings

PATH = "/inbound/openapi.json"
_ERROR = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {"status": {"const": "error"}, "message": {"type": "string"}},
}
_LEAD_ERROR = {
    "type": "object",
    "required": ["status", "message", "errors"],
    "properties": {
        "status": {"const": "error"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(limit: int) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    return {
        "401": _json(error, "credentials missing or wrong"),
        "403": _json(error, "the sender's address is not allowed"),
        "408": _json(error, "the body did not arrive in time"),
        "413": _json(error, f"the body is over {limit} bytes"),
        "503": _json(error, "it cannot be stored now: send it again later"),
    }


def inbound_openapi(settings: InboundSettings) -> dict[str, Any]:
    """The document for the endpoints enabled in ``settings``."""
    limit = settings.max_body_bytes
    paths: dict[str, Any] = {}
    schemes: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    if settings.apna.enabled and settings.apna.auth is not None:
        auth = settings.apna.auth
        schemes["apna"] = (
            {"type": "http", "scheme": "basic"} if auth.type == "basic"
            else {"type": "http", "scheme": "bearer"} if auth.type == "bearer"
            else {"type": "apiKey", "in": "header", "name": auth.header_name}
        )  # fmt: skip
        lead = ApnaLead.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(lead.pop("$defs", {}))
        schemas["ApnaLead"] = lead
        schemas["LeadRefused"] = _LEAD_ERROR
        ok = {"type": "object", "properties": {"status": {"const": "success"},
                                               "message": {"type": "string"}}}  # fmt: skip
        paths[settings.apna.path] = {"post": {
            "summary": "An Apna candidate lead", "security": [{"apna": []}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ApnaLead"}}}},
            "responses": {
                "200": _json(ok, "stored (a repeat of a stored lead is answered alike)"),
                "400": _json({"$ref": "#/components/schemas/LeadRefused"},
                             "not a usable lead: each problem names its field, never its value"),
                "415": _json({"$ref": "#/components/schemas/Error"},
                             "Content-Type must be application/json"),
                **_errors(limit),
            },
        }}  # fmt: skip
    if settings.pop.enabled:
        schemes["pop"] = {"type": "http", "scheme": "basic"}
        details = {
            "type": "object",
            "description": "The notification's details (optional); other keys are kept.",
            "properties": {
                "application_id": {"type": ["string", "integer"],
                                   "description": "if given, the one in the URL"},
                "report_id": {"type": ["string", "integer"],
                              "description": "1 to 64 visible ASCII characters"},
            },
        }  # fmt: skip
        operation = {
            "summary": "The POP Engine: an applicant completed", "security": [{"pop": []}],
            "parameters": [{"name": "application_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}}],
            "responses": {
                "200": _json({"type": "object", "properties": {"status": {"const": "ok"}}},
                             "stored"),
                "400": _json({"$ref": "#/components/schemas/Error"},
                             "a bad application id or body"),
                **_errors(limit),
            },
        }  # fmt: skip
        methods = {}
        for method in settings.pop.methods:
            entry = dict(operation)
            if method != "GET":
                body = {"application/json": {"schema": details}}
                entry["requestBody"] = {"required": False, "content": body}
            methods[method.lower()] = entry
        paths[settings.pop.path.rstrip("/") + "/{application_id}"] = methods
    return {
        "openapi": "3.1.0",
        "info": {"title": "hirebridge inbound endpoints", "version": __version__},
        "servers": [{"url": settings.public_url.rstrip("/")}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": schemes},
    }
