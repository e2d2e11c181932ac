"""JMESPath functions that field maps may call, beyond JMESPath's own.

Every function passes ``null`` through (a missing source value stays missing, so ``default`` and
``required`` decide), and raises ``ValueError`` with a plain reason on a value it cannot handle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
import phonenumbers
import pycountry
from jmespath import functions

_ANSWER_KEYS = ("Answers", "answers", "Questions", "questions")
_NAME_PARTS = ("first", "middle", "last", "given")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def parse_date(value: str) -> date | datetime:
    """ISO 8601 date or date-time (``Z`` accepted); ValueError otherwise."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return (
            datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        )
    except ValueError:
        raise ValueError("value is not an ISO 8601 date or date-time") from None


def _midnight_ms(value: str) -> int:
    """Milliseconds since the epoch at midnight UTC of the date in ``value``."""
    parsed = parse_date(value)
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


class MapFunctions(functions.Functions):
    """The functions of one field map (lookup tables are per map)."""

    def __init__(self, lookups: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        self._lookups = lookups

    @functions.signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_date(self, value: str | None, fmt: str) -> str | None:
        """``date(value, '%Y-%m-%d')``: reformat an ISO date or date-time."""
        if value is None:
            return None
        return parse_date(value).strftime(fmt)

    @functions.signature(
        {"types": ["string", "null"]}, {"types": ["string"]}, {"types": ["string"]}
    )
    def _func_date_in(self, value: str | None, fmt: str, zone: str) -> str | None:
        """``date_in(value, '%Y-%m-%d', 'Australia/Sydney')``: a date-time with a zone is
        converted to ``zone``; one without is taken as already in ``zone``."""
        if value is None:
            return None
        parsed = parse_date(value)
        if not isinstance(parsed, datetime):
            return parsed.strftime(fmt)
        target = _zone(zone)
        local = parsed.astimezone(target) if parsed.tzinfo else parsed.replace(tzinfo=target)
        return local.strftime(fmt)

    @functions.signature({"types": ["string", "null"]})
    def _func_xero_date(self, value: str | None) -> str | None:
        """``xero_date(value)``: a date as Xero's /Date(milliseconds+0000)/ (midnight UTC)."""
        return None if value is None else f"/Date({_midnight_ms(value)}+0000)/"

    @functions.signature({"types": ["string", "null"]})
    def _func_sap_date(self, value: str | None) -> str | None:
        """``sap_date(value)``: a date as OData v2 JSON's /Date(milliseconds)/ (midnight UTC),
        which SAP SuccessFactors reads as that calendar day."""
        return None if value is None else f"/Date({_midnight_ms(value)})/"

    @functions.signature({"types": ["string", "null"]}, {"types": ["string"]})
    def _func_split_name(self, full: str | None, part: str) -> str | None:
        """``split_name(name, 'first'|'middle'|'last'|'given')`` of a full name."""
        if part not in _NAME_PARTS:
            raise ValueError(f"split_name part must be one of {', '.join(_NAME_PARTS)}")
        words = (full or "").split()
        if not words:
            return None
        picked = {
            "first": words[:1], "last": words[-1:] if len(words) > 1 else [],
            "middle": words[1:-1], "given": words[:-1] if len(words) > 1 else words,
        }[part]  # fmt: skip
        return " ".join(picked) or None

    @functions.signature({"types": ["string", "null"]})
    def _func_title(self, value: str | None) -> str | None:
        return None if value is None else value.strip().title()

    @functions.signature({"types": ["string", "number", "null"]}, {"types": ["string"]})
    def _func_phone_e164(self, number: str | int | None, region: str) -> str | None:
        """``phone_e164(number, 'AU')``: +61412345678, for numbers written locally or not."""
        if number is None or str(number).strip() == "":
            return None
        try:
            parsed = phonenumbers.parse(str(number), region.upper())
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is None or not phonenumbers.is_valid_number(parsed):
            raise ValueError(f"not a valid phone number for region {region}")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    @functions.signature({"types": ["string", "null"]})
    def _func_country_code(self, country: str | None) -> str | None:
        """``country_code('Australia')`` is 'AU' (names, common names, alpha-2/3 codes)."""
        if country is None or not country.strip():
            return None
        try:
            return str(pycountry.countries.lookup(country.strip()).alpha_2)
        except LookupError:
            raise ValueError("not a country name or ISO code") from None

    @functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})
    def _func_annual_to_hourly(self, amount: float | None, hours: float | None) -> float | None:
        """Annual pay to an hourly rate over 52 weeks of ``hours`` a week (2 decimals)."""
        if amount is None or hours is None:
            return None
        if hours <= 0:
            raise ValueError("hours per week must be above 0")
        return round(amount / (hours * 52), 2)

    @functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})
    def _func_hourly_to_annual(self, rate: float | None, hours: float | None) -> float | None:
        if rate is None or hours is None:
            return None
        return round(rate * hours * 52, 2)

    @functions.signature({"types": ["number", "null"]}, {"types": ["number"]})
    def _func_round(self, value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, int(digits))

    @functions.signature({"types": ["string"]}, {"types": []})
    def _func_lookup(self, table: str, key: Any) -> Any:
        """``lookup('table', value)``: the table's entry for ``value``, or null."""
        if key is None:
            return None
        if isinstance(key, dict | list):
            raise ValueError(f"lookup('{table}') takes a single value, not {_shape(key)}")
        entries = self._lookups.get(table)
        if entries is None:
            raise ValueError(f"unknown lookup table {table!r}")
        return entries.get(key if isinstance(key, str) else str(key))

    @functions.signature({"types": ["object", "array", "null"]}, {"types": ["string", "number"]})
    def _func_answer(self, form: Any, question: str | int) -> Any:
        """``answer(form, `11`)`` by question id, ``answer(form, 'Bank BSB')`` by question text:
        a single value (text, number, true/false). An object or a list is refused: the map
        asks for one with ``answer_object``."""
        value = _the_answer(form, question)
        if isinstance(value, dict | list):
            raise ValueError(
                f"the answer to {_question(question)} is {_shape(value)}, not a single value "
                "(use answer_object() if the map expects one)"
            )
        return value

    @functions.signature({"types": ["object", "array", "null"]}, {"types": ["string", "number"]})
    def _func_answer_object(self, form: Any, question: str | int) -> Any:
        """``answer_object(form, `20`)``: an answer that is an object or a list, as it is
        (``answer_object(form, `20`).Value`` picks a part); a single value is refused."""
        value = _the_answer(form, question)
        if value is not None and not isinstance(value, dict | list):
            raise ValueError(
                f"the answer to {_question(question)} is {_shape(value)}, not an object or a "
                "list (use answer() for a single value)"
            )
        return value

    @functions.signature({"types": ["string"]}, {"types": ["array"]})
    def _func_join_present(self, separator: str, values: list[Any]) -> str | None:
        """``join_present(' ', [a, b])``: join the non-empty values; null if none."""
        for index, value in enumerate(values, start=1):
            if isinstance(value, dict | list):  # its text would be Python's, not the data's
                raise ValueError(f"join_present(): item {index} is {_shape(value)}, not a value")
        parts = [str(v).strip() for v in values if v is not None and str(v).strip()]
        return separator.join(parts) if parts else None

    @functions.signature({"types": []})
    def _func_to_string(self, value: Any) -> str | None:
        """JMESPath's to_string, except that null stays null (not the text "null")."""
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    @functions.signature({"types": ["string", "null"]})
    def _func_upper(self, value: str | None) -> str | None:
        return None if value is None else value.upper()

    @functions.signature({"types": ["string", "null"]})
    def _func_lower(self, value: str | None) -> str | None:
        return None if value is None else value.lower()

    @functions.signature({"types": ["string", "null"]})
    def _func_trim(self, value: str | None) -> str | None:
        return None if value is None else value.strip()


def _the_answer(form: Any, question: str | int) -> Any:
    """The answer to ``question`` (an id, or a question's text); null if it is not there.
    A question answered more than once must have the same answer each time."""
    if form is None:
        return None
    answers = form
    if isinstance(form, dict):
        answers = next((form[k] for k in _ANSWER_KEYS if isinstance(form.get(k), list)), [])
    wanted = question.strip().casefold() if isinstance(question, str) else question
    found = []
    for item in answers:
        if not isinstance(item, dict):
            continue
        if isinstance(wanted, str):
            text = item.get("Question", item.get("question"))
            matches = isinstance(text, str) and text.strip().casefold() == wanted
        else:
            matches = item.get("QuestionID", item.get("questionId")) == wanted
        if matches:
            found.append(item.get("Answer", item.get("answer")))
    if len(found) > 1 and len({json.dumps(v, sort_keys=True, default=str) for v in found}) > 1:
        raise ValueError(
            f"{_question(question)} is answered {len(found)} times, with different answers"
        )
    return found[0] if found else None


def _question(question: str | int) -> str:
    """How an error names a question: by its id or its text (the map's, never an answer)."""
    if isinstance(question, str):
        return f"question {question.strip()!r}"
    return f"question {int(question) if float(question).is_integer() else question}"


def _shape(value: Any) -> str:
    """What a value is, for an error that must not quote it."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, int | float) else "text"


def function_names() -> set[str]:
    """Every function a map may call: JMESPath's built-ins and ours."""
    return {name[len("_func_") :] for name in dir(MapFunctions) if name.startswith("_func_")}


def options_for(lookups: Mapping[str, Mapping[str, Any]]) -> jmespath.Options:
    return jmespath.Options(custom_functions=MapFunctions(lookups))
