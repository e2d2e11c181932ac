"""HiBob "Create employee", its named lists and its fields metadata.

From HiBob's public documentation and OpenAPI:
- ``POST /v1/people``, HTTP Basic with a service user's id and token; ``firstName``,
  ``surname``, ``email``, ``work.site`` and ``work.startDate`` are required; the answer is the
  new employee as JSON, its id in ``id``;
- list fields (``work.site``, ``work.department``, ``work.title``) hold the id of an item of a
  named list, not its display name; ``GET /v1/company/named-lists`` gives each list's
  ``items`` (``id``, ``name``, ``archived``, ``children``);
- ``GET /v1/company/people/fields`` gives every field, custom ones included, with its ``id``,
  ``name``, ``category``, ``type`` and ``jsonPath``.

Assumed: refusals are ``400 {"key": ..., "error": ...}``; a list field holding an unknown id,
or a ``work.customColumns`` field that the account has not created, is refused.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.hris.core import HrisState, Server, basic_pair, dig, missing

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LIST_FIELDS = {"work.site": "site", "work.department": "department", "work.title": "title"}
# list name -> (item id, display name); the shipped map's lookup tables hold these ids.
DEFAULT_LISTS: dict[str, list[Any]] = {
    "site": [(2451001, "Sydney Office"), (2451002, "Melbourne Office"),
             (2451003, "Brisbane Office"), (2451004, "Perth Office")],
    "department": [(3120001, "Finance"), (3120002, "Clinical"), (3120003, "Technology"),
                   (3120004, "Retail")],
    "title": [(4870001, "Payroll Officer"), (4870002, "Registered Nurse"),
              (4870003, "Software Engineer"), (4870004, "Store Manager")],
}  # fmt: skip
DEFAULT_CUSTOM_FIELDS = ["work.customColumns.pageupOfferId"]
STANDARD_FIELDS = [
    ("root.firstName", "First name", "root", "text"),
    ("root.surname", "Last name", "root", "text"),
    ("root.email", "Email", "root", "text"),
    ("work.site", "Site", "work", "list"),
    ("work.department", "Department", "work", "list"),
    ("work.title", "Job title", "work", "list"),
    ("work.startDate", "Start date", "work", "date"),
    ("personal.birthDate", "Birth date", "personal", "date"),
]


def refused(key: str, error: str, status: int = 400) -> Response:
    return JSONResponse({"key": key, "error": error}, status_code=status)


class HiBob:
    name = "hibob"
    path = "/v1/people"
    required: tuple[str, ...] = ("firstName", "surname", "email", "work.site", "work.startDate")

    def authorise(self, request: Request, state: HrisState) -> Response | None:
        if basic_pair(request) == (state.username, state.api_key):
            return None
        return refused("unauthorized", "Invalid service user credentials", 401)

    def lists(self, state: HrisState) -> dict[str, list[Any]]:
        return state.lists if state.lists is not None else DEFAULT_LISTS

    def custom(self, state: HrisState) -> list[str]:
        return state.custom_fields if state.custom_fields is not None else DEFAULT_CUSTOM_FIELDS

    def problem(self, payload: Any, state: HrisState) -> tuple[str, str] | None:
        if not isinstance(payload, dict):
            return "body", "The request body must be an employee object"
        for name in missing(payload, state.required or self.required):
            return name, f"{name} is mandatory"
        for name in ("firstName", "surname", "email"):
            if not isinstance(payload.get(name), str):
                return name, f"{name} must be a string"
        for name in ("work.startDate", "personal.birthDate"):
            value = dig(payload, name)
            if value is not None and not (isinstance(value, str) and _DATE.match(value)):
                return name, f"{name} must be a date (yyyy-MM-dd)"
        lists = self.lists(state)
        for name, list_name in LIST_FIELDS.items():
            value = dig(payload, name)
            ids = {str(item_id) for item_id, _ in lists.get(list_name, [])}
            if value is not None and str(value) not in ids:
                return name, f"{name}: no item with id {value} in list {list_name}"
        customs = dig(payload, "work.customColumns") or {}
        for column in customs if isinstance(customs, dict) else []:
            if f"work.customColumns.{column}" not in self.custom(state):
                return f"work.customColumns.{column}", "Field does not exist"
        return None

    def routes(self, server: Server) -> list[Route]:
        state = server.state

        async def create(request: Request) -> Response:
            early = await server.entry(request, "post")
            if early is not None:
                return early
            payload, ok = await server.read(request)
            if not ok:
                return refused("body", "Malformed JSON")
            problem = self.problem(payload, state)
            if problem is not None:
                return refused(*problem)
            offer_id = str(dig(payload, "work.customColumns.pageupOfferId"))
            record_id = state.store(payload, offer_id)
            response = server.remember(request, 200, {"id": record_id, **payload})
            await server.maybe_slow()
            return response

        async def named_lists(request: Request) -> Response:
            state.calls["named_lists"] += 1
            early = await server.gate(request)
            if early is not None:
                return early
            return JSONResponse(
                {
                    name: {"name": name, "items": [
                        {"id": item_id, "value": label, "name": label, "archived": False,
                         "children": []}
                        for item_id, label in items
                    ]}
                    for name, items in self.lists(state).items()
                }
            )  # fmt: skip

        async def fields(request: Request) -> Response:
            state.calls["people_fields"] += 1
            early = await server.gate(request)
            if early is not None:
                return early
            known = [(f, f.rsplit(".", 1)[-1], "work", "text") for f in self.custom(state)]
            return JSONResponse(
                [
                    {"id": field_id, "name": name, "category": category, "type": kind,
                     "historical": category == "work", "jsonPath": field_id.removeprefix("root."),
                     "description": ""}
                    for field_id, name, category, kind in STANDARD_FIELDS + known
                ]
            )  # fmt: skip

        return [
            Route(self.path, create, methods=["POST"]),
            Route("/v1/company/named-lists", named_lists, methods=["GET"]),
            Route("/v1/company/people/fields", fields, methods=["GET"]),
        ]
