"""Xero Payroll AU "Create employee".

From Xero's OpenAPI (``xero-payroll-au.yaml``) and documentation:
- ``POST /payroll.xro/1.0/Employees`` with an array of employees, an OAuth2 bearer token and
  the organisation's ``xero-tenant-id`` header;
- ``FirstName``, ``LastName`` and ``DateOfBirth`` are required, dates are ``/Date(ms+0000)/``,
  ``HomeAddress.Region`` is one of the ``State`` enumeration, ``Gender`` one of N/M/F/I;
- the answer is ``{"Employees": [{"EmployeeID": ...}]}``; an employee that fails validation
  comes back with its ``ValidationErrors`` (``[{"Message": ...}]``).

Assumed: the refusal is HTTP 400 with ``Type: ValidationException`` (as Xero's accounting API
answers) and ``HomeAddress.AddressLine1`` is required (Xero's documentation lists it).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.hris.core import HrisState, Server, bearer_known, dig, missing

_MS_DATE = re.compile(r"^/Date\(-?\d+(\+\d{4})?\)/$")
STATES = ("ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA")
GENDERS = ("N", "M", "F", "I")


def validation(payload: Any, messages: list[str]) -> Response:
    employee = {**payload, "ValidationErrors": [{"Message": m} for m in messages]}
    return JSONResponse(
        {"ErrorNumber": 10, "Type": "ValidationException",
         "Message": "A validation exception occurred", "Employees": [employee]},
        status_code=400,
    )  # fmt: skip


class Xero:
    name = "xero"
    path = "/payroll.xro/1.0/Employees"
    required: tuple[str, ...] = ("FirstName", "LastName", "DateOfBirth", "HomeAddress.AddressLine1")

    def authorise(self, request: Request, state: HrisState) -> Response | None:
        if not bearer_known(request, state):
            return JSONResponse({"Type": "Unauthorized", "Title": "Unauthorized"}, status_code=401)
        if request.headers.get("xero-tenant-id") != state.tenant_id:
            return JSONResponse(
                {"Type": "Forbidden", "Title": "xero-tenant-id is wrong"}, status_code=403
            )
        return None

    def problems(self, employee: dict[str, Any], state: HrisState) -> list[str]:
        found = [f"{n} is required" for n in missing(employee, state.required or self.required)]
        for name in ("DateOfBirth", "StartDate"):
            value = employee.get(name)
            if value is not None and not (isinstance(value, str) and _MS_DATE.match(value)):
                found.append(f"{name} must be a /Date(...)/ date")
        region = dig(employee, "HomeAddress.Region")
        if region is not None and region not in STATES:
            found.append(f"HomeAddress.Region must be one of {', '.join(STATES)}")
        if employee.get("Gender") not in (None, *GENDERS):
            found.append("Gender must be one of N, M, F, I")
        return found

    def routes(self, server: Server) -> list[Route]:
        state = server.state

        async def create(request: Request) -> Response:
            early = await server.entry(request, "post")
            if early is not None:
                return early
            payload, ok = await server.read(request)
            if not ok or not isinstance(payload, list) or len(payload) != 1:
                return validation({}, ["The body must be an array of one employee"])
            employee = payload[0]
            if not isinstance(employee, dict):
                return validation({}, ["An employee is a JSON object"])
            problems = self.problems(employee, state)
            if problems:
                return validation(employee, problems)
            person = f"{employee.get('FirstName')}|{employee.get('LastName')}"
            record_id = state.store(employee, f"{person}|{employee.get('DateOfBirth')}")
            body = {"Status": "OK", "Employees": [{"EmployeeID": record_id, **employee}]}
            response = server.remember(request, 200, body)
            await server.maybe_slow()
            return response

        return [Route(self.path, create, methods=["POST"])]
