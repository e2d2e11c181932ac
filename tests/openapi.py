"""Checking real responses against an OpenAPI 3.1 document (its schemas are JSON Schema 2020-12,
so jsonschema validates them; openapi-spec-validator checks the document itself)."""

from __future__ import annotations

from typing import Any

import jsonschema
from openapi_spec_validator import validate as validate_spec


def check_document(spec: dict[str, Any]) -> None:
    validate_spec(spec)


def response_schema(spec: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    responses = spec["paths"][path][method.lower()]["responses"]
    found = responses.get(str(status))
    assert found is not None, f"{method} {path}: {status} is not documented"
    if "$ref" in found:  # "#/components/responses/Name"
        found = spec["components"]["responses"][found["$ref"].rsplit("/", 1)[1]]
    schema: dict[str, Any] = found["content"]["application/json"]["schema"]
    return schema


def check_response(spec: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """``body`` as answered with ``status`` matches what ``spec`` documents for it."""
    schema = {**response_schema(spec, path, method, status), "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)
