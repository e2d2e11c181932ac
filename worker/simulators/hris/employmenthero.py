"""Employment Hero payroll (the KeyPay API): the "unstructured" employee.

From Employment Hero's API reference and its official SDK (KeyPay/keypay-dotnet-v2):
- ``POST /api/v2/business/{businessId}/employee/unstructured`` creates an employee (or updates
  the one whose ``id`` it names) with tax file declaration, bank accounts, super fund and pay
  details in one flat object (``AuUnstructuredEmployeeModel``); it answers
  ``{"id", "status", "detailedStatus"}``;
- ``GET .../employee/unstructured/externalid/{externalId}`` finds an employee by external id;
  ``PUT .../employee/unstructured/{employeeId}`` updates one;
- HTTP Basic with the API key as the user name;
- property types as the SDK model declares them (booleans, decimals, ISO date-times, strings).

Assumed (the SDK marks nothing required and leaves these as free strings): ``firstName``,
``surname``, ``dateOfBirth`` and ``startDate`` are required; the enumerations below; a tax file
number is nine digits; an external id already in use is refused (so a retry must look it up);
a miss on the external-id look-up is a 404; refusals are ASP.NET's ``400 {"message",
"modelState": {"employee.<Field>": [...]}}``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.hris.core import HrisState, Server, basic_pair

BUSINESS_ID = "10001"
BASE = f"/api/v2/business/{BUSINESS_ID}/employee/unstructured"
BOOLEANS = frozenset(
    {
        "australianResident",
        "claimTaxFreeThreshold",
        "stslDebt",
        "hasApprovedWorkingHolidayVisa",
        "seniorsTaxOffset",
        "otherTaxOffset",
    }
)
NUMBERS = frozenset(
    {
        "rate",
        "hoursPerWeek",
        "bankAccount1_AllocatedPercentage",
        "superFund1_AllocatedPercentage",
        "bankAccount1_FixedAmount",
    }
)
DATES = frozenset({"dateOfBirth", "startDate", "endDate", "dateTaxFileDeclarationSigned"})
ENUMS = {
    "employmentType": {"Full Time", "Part Time", "Casual", "Labour Hire", "Super Income Stream"},
    "rateUnit": {"Hourly", "Annually", "Daily", "Monthly"},
    "residentialState": {"ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"},
}  # fmt: skip
_TFN = re.compile(r"^\d{9}$")


def invalid(problems: dict[str, str]) -> Response:
    model_state = {f"employee.{name[:1].upper()}{name[1:]}": [m] for name, m in problems.items()}
    return JSONResponse(
        {"message": "The request is invalid.", "modelState": model_state}, status_code=400
    )


def _is_date(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _type_problem(name: str, value: Any) -> str | None:
    """The SDK model's type for ``name`` (bool, decimal, DateTime, else string) and enums."""
    if name in BOOLEANS:
        return None if isinstance(value, bool) else "Expected a boolean."
    if name in NUMBERS:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else "Expected a number."
    if name in DATES:
        return None if _is_date(value) else "Expected a date (yyyy-MM-ddTHH:mm:ss)."
    if name in ENUMS:
        return None if value in ENUMS[name] else f"'{value}' is not a valid value."
    return None if value is None or isinstance(value, str) else "Expected a string."


class EmploymentHero:
    name = "employmenthero"
    path = BASE
    required: tuple[str, ...] = ("firstName", "surname", "dateOfBirth", "startDate")

    def authorise(self, request: Request, state: HrisState) -> Response | None:
        pair = basic_pair(request)
        if pair is not None and pair[0] == state.api_key:
            return None
        return JSONResponse({"message": "Authorization has been denied for this request."},
                            status_code=401)  # fmt: skip

    def problems(self, payload: dict[str, Any], state: HrisState) -> dict[str, str]:
        found = {n: f"The {n} field is required." for n in state.required or self.required
                 if payload.get(n) in (None, "")}  # fmt: skip
        for name, value in payload.items():
            problem = _type_problem(name, value)
            if problem is not None:
                found[name] = problem
        tfn = payload.get("taxFileNumber")
        if tfn is not None and not (isinstance(tfn, str) and _TFN.match(tfn)):
            found["taxFileNumber"] = "The tax file number is invalid."
        return found

    def routes(self, server: Server) -> list[Route]:
        state = server.state

        def by_external_id(external_id: str) -> str | None:
            return next((rid for rid, r in state.records.items()
                         if r.get("externalId") == external_id), None)  # fmt: skip

        async def create(request: Request) -> Response:
            early = await server.entry(request, "post")
            if early is not None:
                return early
            payload, ok = await server.read(request)
            if not ok or not isinstance(payload, dict):
                return invalid({"employee": "The request body must be an employee object."})
            problems = self.problems(payload, state)
            if problems:
                return invalid(problems)
            external_id = str(payload.get("externalId"))
            if payload.get("externalId") and by_external_id(external_id) is not None:
                return invalid({"externalId": "An employee with this external id exists."})
            record_id = state.store(payload, external_id, record_id=str(1000 + len(state.records)))
            body = {"id": int(record_id), "status": "Created", "detailedStatus": "Created"}
            response = server.remember(request, 200, body)
            await server.maybe_slow()
            return response

        async def find(request: Request) -> Response:
            state.calls["find"] += 1
            early = await server.gate(request)
            if early is not None:
                return early
            record_id = by_external_id(request.path_params["external_id"])
            if record_id is None:
                return JSONResponse({"message": "Employee not found."}, status_code=404)
            return JSONResponse({**state.records[record_id], "id": int(record_id)})

        async def update(request: Request) -> Response:
            early = await server.entry(request, "put")
            if early is not None:
                return early
            record_id = request.path_params["employee_id"]
            if record_id not in state.records:
                return JSONResponse({"message": "Employee not found."}, status_code=404)
            payload, ok = await server.read(request)
            if not ok or not isinstance(payload, dict):
                return invalid({"employee": "The request body must be an employee object."})
            problems = self.problems(payload, state)
            if problems:
                return invalid(problems)
            state.records[record_id] = payload
            body = {"id": int(record_id), "status": "Updated", "detailedStatus": "Updated"}
            return server.remember(request, 200, body)

        return [
            Route(BASE, create, methods=["POST"]),
            Route(BASE + "/externalid/{external_id}", find, methods=["GET"]),
            Route(BASE + "/{employee_id}", update, methods=["PUT"]),
        ]
