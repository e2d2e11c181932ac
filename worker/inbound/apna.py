"""Apna candidate leads: the documented payload, validated field by field.

Types follow Apna's integration guide (``shared/seeds/000_*``). Fields it does not document are
kept as they came, not refused: Apna may add some, and the field map can use them. Problems name
the field (``educations.0.start``) and never quote the value: leads are personal data.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from worker.inbound.body import BodyError, parse_json
from worker.mapping.functions import parse_date


def _iso(value: str) -> str:
    if value != value.strip():  # parse_date forgives it; the map would get it as sent
        raise ValueError("has leading or trailing whitespace")
    parse_date(value)  # ValueError names the problem without the value
    return value


IsoDate = Annotated[StrictStr, AfterValidator(_iso)]
Number = StrictInt | StrictFloat


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class DerivedLocation(_Part):
    lat: Number | None = None
    lng: Number | None = None


class UserLocation(_Part):
    display_name: StrictStr | None = None
    city: StrictStr | None = None
    derived_location: DerivedLocation | None = None


class Education(_Part):
    education_level: StrictStr | None = None
    degree: StrictStr | None = None
    education_institute: StrictStr | None = None
    specialization: StrictStr | None = None
    start: IsoDate | None = None
    end: IsoDate | None = None
    ongoing: StrictBool | None = None


class Experience(_Part):
    organization: StrictStr | None = None
    job_title: StrictStr | None = None
    employment_type: StrictStr | None = None
    industry: StrictStr | None = None
    department: StrictStr | None = None
    start: IsoDate | None = None
    end: IsoDate | None = None
    ongoing: StrictBool | None = None


class ContactInfo(_Part):
    email: StrictStr | None = None
    phone_number: StrictStr | None = None

    @model_validator(mode="after")
    def _reachable(self) -> ContactInfo:
        if not (self.email or "").strip() and not (self.phone_number or "").strip():
            raise ValueError("needs an email or a phone_number")
        if self.email and "@" not in self.email:
            raise ValueError("email is not an email address")
        return self


class ApnaLead(_Part):
    """A lead is usable when it names the candidate and says how to reach them."""

    full_name: StrictStr
    contact_info: ContactInfo
    gender: Literal["m", "f"] | None = None
    date_of_birth: IsoDate | None = None
    current_salary: StrictInt | None = None
    current_salary_v2: StrictInt | None = None
    notice_period: StrictInt | None = None
    english_language_marker: StrictStr | None = None
    user_location: UserLocation | None = None
    educations: list[Education] = []
    experiences: list[Experience] = []
    known_languages: list[StrictStr] = []
    skills: list[StrictStr] = []

    @model_validator(mode="after")
    def _named(self) -> ApnaLead:
        if not self.full_name.strip():
            raise ValueError("full_name is empty")
        return self


def lead_problems(body: bytes) -> tuple[Any, list[dict[str, str]]]:
    """The lead as JSON, or the problems (``field``, ``message``) that make it unusable."""
    try:
        lead = parse_json(body)
    except BodyError as exc:
        return None, [{"field": "(body)", "message": str(exc)}]
    try:
        ApnaLead.model_validate(lead)
    except ValidationError as exc:
        return None, [
            _problem(error) for error in exc.errors(include_input=False, include_url=False)
        ]
    return lead, []


def _problem(error: Any) -> dict[str, str]:
    field = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
    message = str(error["msg"])
    if error["type"] == "model_type" or error["type"] == "model_attributes_type":
        message = "must be a JSON object"
    return {"field": field or "(body)", "message": message.removeprefix("Value error, ")}
