"""Evaluating a field map over a source document: a pure function, no I/O."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from jmespath.exceptions import JMESPathError

from worker.errors import MappingError
from worker.mapping.loader import TYPES, FieldMap, FieldRule, is_missing


@dataclass(frozen=True, slots=True)
class MappedRecord:
    """The payload to send, and the values it holds that must never be logged."""

    payload: Any  # a JSON object, or a one-element array of it (map body: array)
    sensitive_values: tuple[str, ...]


def apply_map(field_map: FieldMap, document: Any) -> MappedRecord:
    """Map ``document``; MappingError lists every field that could not be filled."""
    payload: dict[str, Any] = {}
    sensitive: list[str] = []
    problems: list[str] = []
    for rule in field_map.rules:
        try:
            value = _evaluate(rule, field_map, document)
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
    body = [payload] if field_map.body == "array" else payload
    return MappedRecord(body, tuple(sensitive))


class _FieldProblem(Exception):
    pass


def _evaluate(rule: FieldRule, field_map: FieldMap, document: Any) -> Any:
    if rule.when is not None:
        try:
            applies = rule.when.search(document, options=field_map.options)
        except (JMESPathError, ValueError, TypeError, OverflowError) as exc:
            raise _FieldProblem(f"its 'when' condition failed: {_reason(exc)}") from None
        if applies in (None, False, "", [], {}, 0):
            return None
    if rule.compiled is None:
        value = copy.deepcopy(rule.const)
    else:
        try:
            value = rule.compiled.search(document, options=field_map.options)
        except (JMESPathError, ValueError, TypeError, OverflowError) as exc:
            raise _FieldProblem(f"{rule.expression!r} failed: {_reason(exc)}") from None
    if value is None or value == "":
        value = None if is_missing(rule.default) else copy.deepcopy(rule.default)
    if value is None:
        if rule.required:
            source = rule.expression or "its constant"
            raise _FieldProblem(f"required, but {source!r} gave no value")
        return None
    if rule.type is not None and not _has_type(value, rule.type):
        raise _FieldProblem(
            f"expected {rule.type}, {rule.expression!r} gave {type(value).__name__}"
        )
    return value


def _has_type(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, TYPES[type_name])


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
