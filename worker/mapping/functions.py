"""JMESPath functions that field maps may call, beyond JMESPath's own.

Every function passes ``null`` through (a missing source value stays missing, so ``default`` and
``required`` decide), and raises ``ValueError`` with a plain reason on a value it cannot handle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import jmespath
from jmespath import functions

_ANSWER_KEYS = ("Answers", "answers", "Questions", "questions")


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

    @functions.signature({"types": ["string"]}, {"types": []})
    def _func_lookup(self, table: str, key: Any) -> Any:
        """``lookup('table', value)``: the table's entry for ``value``, or null."""
        if key is None:
            return None
        entries = self._lookups.get(table)
        if entries is None:
            raise ValueError(f"unknown lookup table {table!r}")
        return entries.get(key if isinstance(key, str) else str(key))

    @functions.signature({"types": ["object", "array", "null"]}, {"types": ["string", "number"]})
    def _func_answer(self, form: Any, question: str | int) -> Any:
        """``answer(form, `11`)`` by question id, ``answer(form, 'Bank BSB')`` by question text."""
        if form is None:
            return None
        answers = form
        if isinstance(form, dict):
            answers = next((form[k] for k in _ANSWER_KEYS if isinstance(form.get(k), list)), [])
        wanted = question.strip().casefold() if isinstance(question, str) else question
        for item in answers:
            if not isinstance(item, dict):
                continue
            if isinstance(wanted, str):
                text = item.get("Question", item.get("question"))
                if isinstance(text, str) and text.strip().casefold() == wanted:
                    return item.get("Answer", item.get("answer"))
            elif item.get("QuestionID", item.get("questionId")) == wanted:
                return item.get("Answer", item.get("answer"))
        return None

    @functions.signature({"types": ["string"]}, {"types": ["array"]})
    def _func_join_present(self, separator: str, values: list[Any]) -> str | None:
        """``join_present(' ', [a, b])``: join the non-empty values; null if none."""
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


def function_names() -> set[str]:
    """Every function a map may call: JMESPath's built-ins and ours."""
    return {name[len("_func_") :] for name in dir(MapFunctions) if name.startswith("_func_")}


def options_for(lookups: Mapping[str, Mapping[str, Any]]) -> jmespath.Options:
    return jmespath.Options(custom_functions=MapFunctions(lookups))
