"""The request parts of a field-map step: its path template, upsert look-up, record id and the
``accept`` rule that a reply must meet before the step counts as done."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from worker.mapping.expressions import At, Context, compile_checked

FIND_KEYS = {"path", "id", "update"}
ACCEPT_KEYS = {"when", "reason"}
METHODS = ("POST", "PUT", "PATCH")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True, slots=True)
class UrlTemplate:
    """A path (appended to ``hris.url``) whose ``{expression}`` parts are filled per record."""

    text: str
    parts: tuple[tuple[str, Any], ...]  # (placeholder text, compiled expression)


@dataclass(frozen=True, slots=True)
class Find:
    """Upsert: look the record up first; found → ``update`` it, not found → create it."""

    path: UrlTemplate
    id_expression: Any  # JMESPath over the look-up reply's body
    update_method: str
    update_path: UrlTemplate


@dataclass(frozen=True, slots=True)
class RecordId:
    """Where the id of the record a step created is: the reply body or its Location header."""

    source: str  # body | location | none
    compiled: Any = None


@dataclass(frozen=True, slots=True)
class Accept:
    """A reply in a success status is accepted only if ``when`` (JMESPath over its JSON body)
    holds; otherwise ``reason`` (JMESPath over the same body) says why, e.g. the per-record
    status and message that OData upserts answer inside an HTTP 200."""

    when: Any
    reason: Any = None

    def refusal(self, body: Any, options: Any) -> str | None:
        """None when the reply is accepted, else the reason (the remote's own words)."""
        try:
            if _truthy(self.when.search(body, options=options)):
                return None
        except (JMESPathError, ValueError, TypeError):
            return "the reply does not have the shape the map's accept rule reads"
        return self._reason(body, options) or "the reply did not meet the map's accept rule"

    def _reason(self, body: Any, options: Any) -> str | None:
        if self.reason is None:
            return None
        try:
            value = self.reason.search(body, options=options)
        except (JMESPathError, ValueError, TypeError):
            return None
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value if v not in (None, ""))
        return str(value) if value not in (None, "", [], {}) else None


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", [], {}, 0)


def accept_rule(raw: Any, at: At, label: str, context: Context) -> Accept | None:
    if not isinstance(raw, dict) or "when" not in raw:
        context.problems.append(
            f"{at('accept')}: {label}'accept' is {{when: <JMESPath over the reply>, "
            "reason: <JMESPath giving the refusal message>}"
        )
        return None
    for key in sorted(set(raw) - ACCEPT_KEYS, key=str):
        context.problems.append(f"{at('accept', str(key))}: {label}unknown key {key!r} in 'accept'")
    when = compile_checked(f"{label}accept when", raw["when"], context, at("accept", "when"))
    reason = None
    if "reason" in raw:
        reason = compile_checked(
            f"{label}accept reason", raw["reason"], context, at("accept", "reason")
        )
    return Accept(when, reason) if when is not None else None


def template(raw: Any, where: str, label: str, context: Context) -> UrlTemplate | None:
    if not isinstance(raw, str) or not raw.strip():
        context.problems.append(f"{where}: {label}a path is a non-empty string")
        return None
    parts = []
    for match in _PLACEHOLDER.finditer(raw):
        compiled = compile_checked(
            f"{label}path part {{{match.group(1)}}}", match.group(1), context, where
        )
        parts.append((match.group(0), compiled))
    return UrlTemplate(raw, tuple(parts))


def find_rule(raw: Any, at: At, label: str, context: Context) -> Find | None:
    problems = context.problems
    if not isinstance(raw, dict) or not {"path", "id", "update"} <= set(raw):
        problems.append(f"{at('find')}: {label}'find' needs path, id and update")
        return None
    for key in sorted(set(raw) - FIND_KEYS, key=str):
        problems.append(f"{at('find', str(key))}: {label}unknown key {key!r} in 'find'")
    path = template(raw["path"], at("find", "path"), label, context)
    id_expression = compile_checked(f"{label}find id", raw["id"], context, at("find", "id"))
    update = raw["update"]
    if not isinstance(update, dict) or set(update) - {"method", "path"} or "path" not in update:
        problems.append(f"{at('find', 'update')}: {label}'update' is {{method: PUT, path: ...}}")
        return None
    method = update.get("method", "PUT")
    if method not in METHODS:
        problems.append(f"{at('find', 'update')}: {label}update method is one of {METHODS}")
    update_path = template(update["path"], at("find", "update"), label, context)
    if path is None or update_path is None or id_expression is None:
        return None
    return Find(path, id_expression, str(method), update_path)


def record_id_rule(raw: Any, at: At, label: str, problems: list[str]) -> RecordId | None:
    where = at("record_id")
    if not isinstance(raw, dict) or raw.get("from") not in ("body", "location", "none"):
        problems.append(
            f"{where}: {label}record_id is {{from: body, path: <JMESPath>}}, "
            "{from: location} or {from: none}"
        )
        return None
    if raw["from"] != "body":
        return RecordId(str(raw["from"]))
    try:
        return RecordId("body", jmespath.compile(str(raw.get("path", "id"))))
    except JMESPathError as exc:
        problems.append(f"{where}: {label}bad record_id path: {str(exc).splitlines()[0]}")
        return None
