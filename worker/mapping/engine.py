"""Evaluating a field map over a source document: pure functions, no I/O."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jmespath.exceptions import JMESPathError

from worker.errors import MappingError
from worker.mapping.loader import FieldMap, FieldRule, Step, is_missing
from worker.mapping.requests import UrlTemplate
from worker.mapping.types import has_type

_JMESPATH_FAILURES = (JMESPathError, ValueError, TypeError, OverflowError)


@dataclass(frozen=True, slots=True)
class MappedRecord:
    """The payload to send, and the values it holds that must never be logged.

    A one-step map gives its request body (an object, or a one-element array with
    ``body: array``); a map with ``steps`` gives ``{step name: body}`` for the steps that apply,
    with ``<name.id>`` standing for ids that only the target can give.
    """

    payload: Any
    sensitive_values: tuple[str, ...]


def apply_map(field_map: FieldMap, document: Any) -> MappedRecord:
    """Map ``document`` through every step; MappingError lists every field that failed."""
    if not field_map.multi_step:
        return map_step(field_map, field_map.steps[0], document)
    payloads: dict[str, Any] = {}
    sensitive: list[str] = []
    problems: list[str] = []
    ids: dict[str, str | None] = {}
    for step in field_map.steps:
        context = step_context(document, ids)
        ids[step.name] = f"<{step.name}.id>"
        try:
            if not step_applies(field_map, step, context):
                continue
            record = map_step(field_map, step, context)
        except MappingError as exc:
            problems.extend(f"step {step.name!r}: {problem}" for problem in exc.problems)
            continue
        payloads[step.name] = record.payload
        sensitive.extend(record.sensitive_values)
    if problems:
        raise MappingError(problems)
    return MappedRecord(payloads, tuple(sensitive))


def step_context(document: Any, step_ids: Mapping[str, str | None]) -> Any:
    """The document a step's expressions see: the source document plus ``steps.<name>.id``."""
    if not isinstance(document, dict) or not step_ids:
        return document
    return {**document, "steps": {name: {"id": value} for name, value in step_ids.items()}}


def step_applies(field_map: FieldMap, step: Step, context: Any) -> bool:
    if step.when is None:
        return True
    try:
        return _truthy(step.when.search(context, options=field_map.options))
    except _JMESPATH_FAILURES as exc:
        raise MappingError([f"its 'when' condition failed: {_reason(exc)}"]) from None


def map_step(field_map: FieldMap, step: Step, context: Any) -> MappedRecord:
    """One step's payload; MappingError lists every field that could not be filled."""
    payload: dict[str, Any] = {}
    sensitive: list[str] = []
    problems: list[str] = []
    for rule in step.rules:
        try:
            value = _evaluate(rule, field_map, context)
        except _FieldProblem as problem:
            problems.append(f"field {rule.target!r}: {problem}")
            continue
        if value is None:
            continue
        if rule.pii:
            sensitive.extend(_leaf_strings(value))
        _place(payload, rule.path, value)
    if problems:
        raise MappingError(problems)
    body = [payload] if step.body == "array" else payload
    return MappedRecord(body, tuple(sensitive))


def fill_path(field_map: FieldMap, template: UrlTemplate, context: Any) -> str:
    """The template with each ``{expression}`` replaced by its URL-encoded value."""
    text = template.text
    for placeholder, compiled in template.parts:
        try:
            value = compiled.search(context, options=field_map.options)
        except _JMESPATH_FAILURES as exc:
            raise MappingError([f"path part {placeholder} failed: {_reason(exc)}"]) from None
        if value is None or value == "" or isinstance(value, dict | list):
            raise MappingError([f"path part {placeholder} gave no usable value"])
        text = text.replace(placeholder, quote(str(value), safe=""), 1)
    return text


class _FieldProblem(Exception):
    pass


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", [], {}, 0)


def _evaluate(rule: FieldRule, field_map: FieldMap, document: Any) -> Any:
    if rule.when is not None:
        try:
            applies = rule.when.search(document, options=field_map.options)
        except _JMESPATH_FAILURES as exc:
            raise _FieldProblem(f"its 'when' condition failed: {_reason(exc)}") from None
        if not _truthy(applies):
            return None
    if rule.compiled is None:
        value = copy.deepcopy(rule.const)
    else:
        try:
            value = rule.compiled.search(document, options=field_map.options)
        except _JMESPATH_FAILURES as exc:
            raise _FieldProblem(f"{rule.expression!r} failed: {_reason(exc)}") from None
        if rule.type is None and isinstance(value, dict | list):
            raise _FieldProblem(_structure_refused(rule.expression, value))
    if value is None or value == "":
        value = None if is_missing(rule.default) else copy.deepcopy(rule.default)
    if value is None:
        if rule.required:
            source = rule.expression or "its constant"
            raise _FieldProblem(f"required, but {source!r} gave no value")
        return None
    if rule.type is not None and not has_type(value, rule.type):
        raise _FieldProblem(
            f"expected {rule.type}, {rule.expression!r} gave {type(value).__name__}"
        )
    return value


def _structure_refused(expression: str | None, value: dict[str, Any] | list[Any]) -> str:
    """A field without ``type`` takes a single value: a structure from the document would
    reach a text field of the target (as its JSON, or worse). The map declares it to take one.
    Its constant and default are the map's own, so they are taken as written."""
    kind = "object" if isinstance(value, dict) else "array"
    return (
        f"{expression!r} gave an {kind} where a single value is expected "
        f"(declare type: {kind} if the target takes one)"
    )


def _reason(exc: Exception) -> str:
    # JMESPath type errors quote the offending value, which may be PII: keep only the shape.
    if isinstance(exc, JMESPathError) and "invalid type for value" in str(exc):
        text = str(exc)
        return text[text.find("expected") :] if "expected" in text else "invalid argument type"
    return str(exc).splitlines()[0][:200]


def _place(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = payload
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):  # guarded by the loader; keep the payload sane anyway
            raise MappingError([f"field {'.'.join(path)!r}: {key!r} is already a value"])
        node = child
    node[path[-1]] = value


def _leaf_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _leaf_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _leaf_strings(v)]
    return [] if isinstance(value, bool) else [str(value)]


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """What one step would send (for previews): ids only the target gives are placeholders."""

    step: str
    method: str | None  # None: hris.method
    path: str | None  # None: hris.url itself
    payload: Any
    upsert: bool  # looked up first, and updated if found


def planned_requests(field_map: FieldMap, document: Any) -> list[PlannedRequest]:
    record = apply_map(field_map, document)
    payloads = record.payload if field_map.multi_step else {field_map.steps[0].name: record.payload}
    ids: dict[str, str | None] = {}
    planned = []
    for step in field_map.steps:
        context = step_context(document, ids)
        ids[step.name] = f"<{step.name}.id>"
        if step.name not in payloads:
            continue
        payload = payloads[step.name]
        scope = {**context, "payload": payload} if isinstance(context, dict) else {}
        path = fill_path(field_map, step.path, scope) if step.path is not None else None
        planned.append(PlannedRequest(step.name, step.method, path, payload, step.find is not None))
    return planned
