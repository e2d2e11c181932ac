"""Loading and validating a YAML field map. Every problem is reported at once, with file:line:col.

A map looks like::

    name: example-hris
    lookups:
      employment_types: {"Full Time": FULL_TIME}
    fields:
      firstName: {expr: offer.Applicant.FirstName, required: true, pii: true}
      employment.type: "lookup('employment_types', offer.EmploymentType)"
      source: {const: hirebridge}

A dotted target (``employment.type``) builds nested objects in the payload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError

from worker.errors import ConfigError
from worker.mapping.functions import function_names, options_for

_TOP_KEYS = {"name", "description", "lookups", "fields", "requires", "body"}
_RULE_KEYS = {"expr", "const", "default", "required", "type", "pii", "description", "when"}
TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}
_BUILTINS = {
    "abs",
    "avg",
    "ceil",
    "contains",
    "ends_with",
    "floor",
    "join",
    "keys",
    "length",
    "map",
    "max",
    "max_by",
    "merge",
    "min",
    "min_by",
    "not_null",
    "reverse",
    "sort",
    "sort_by",
    "starts_with",
    "sum",
    "to_array",
    "to_number",
    "to_string",
    "type",
    "values",
}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one target field is filled."""

    target: str
    path: tuple[str, ...]
    expression: str | None
    compiled: Any
    const: Any
    default: Any
    required: bool
    type: str | None
    pii: bool
    where: str
    when: Any = None  # a compiled condition: the field is left out when it is falsy


@dataclass(frozen=True, slots=True)
class FieldMap:
    """A validated field map, ready to evaluate."""

    name: str
    source: Path
    version: str
    rules: tuple[FieldRule, ...]
    options: jmespath.Options
    # "object": the payload is the mapped object; "array": a one-element array of it
    # (APIs such as Xero's take a list of records in one call).
    body: str = "object"


def load_field_map(path: Path) -> FieldMap:
    """Read and validate ``path``; ConfigError lists every problem with file:line:col."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read field map: {exc}"]) from None
    data, marks = _parse(text, path)
    version = hashlib.sha256(raw).hexdigest()[:12]
    return _build(data, marks, path, version)


def _parse(text: str, path: Path) -> tuple[Any, dict[tuple[str, ...], str]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: YAML syntax: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: YAML: {exc}"]) from None
    finally:
        loader.dispose()
    marks: dict[tuple[str, ...], str] = {}
    if node is not None:
        _collect_marks(node, (), marks, path)
    return data, marks


def _collect_marks(
    node: yaml.Node, prefix: tuple[str, ...], marks: dict[tuple[str, ...], str], path: Path
) -> None:
    marks.setdefault(prefix, f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}")
    if isinstance(node, yaml.MappingNode) and len(prefix) < 3:
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            marks[key] = f"{path}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
            _collect_marks(value_node, key, marks, path)


def _build(data: Any, marks: dict[tuple[str, ...], str], path: Path, version: str) -> FieldMap:
    problems: list[str] = []

    def at(*keys: str) -> str:
        for end in range(len(keys), -1, -1):
            if keys[:end] in marks:
                return marks[keys[:end]]
        return str(path)

    if not isinstance(data, dict):
        raise ConfigError([f"{at()}: a field map is a mapping with 'fields' (and 'lookups')"])
    for key in sorted(set(data) - _TOP_KEYS):
        problems.append(f"{at(str(key))}: unknown key {key!r} (allowed: {sorted(_TOP_KEYS)})")
    lookups = _lookups(data.get("lookups", {}), at, problems)
    fields = data.get("fields")
    if not isinstance(fields, dict) or not fields:
        problems.append(f"{at('fields')}: 'fields' must map each target field to a rule")
        fields = {}
    known = function_names() | _BUILTINS
    rules = []
    for target, spec in fields.items():
        rule = _rule(str(target), spec, lookups, known, at, problems)
        if rule is not None:
            rules.append(rule)
    _check_paths(rules, problems)
    _check_requires(data.get("requires", []), rules, at, problems)
    body = data.get("body", "object")
    if body not in ("object", "array"):
        problems.append(f"{at('body')}: 'body' is object or array, not {body!r}")
    if problems:
        raise ConfigError(problems)
    name = data.get("name") if isinstance(data.get("name"), str) else path.stem
    return FieldMap(str(name), path, version, tuple(rules), options_for(lookups), body)


def _lookups(raw: Any, at: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        problems.append(f"{at('lookups')}: 'lookups' must map table names to key: value tables")
        return {}
    tables: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        if not isinstance(table, dict):
            problems.append(f"{at('lookups', str(name))}: lookup table {name!r} must be a mapping")
            continue
        tables[str(name)] = {str(k): v for k, v in table.items()}
    return tables


def _rule(
    target: str,
    spec: Any,
    lookups: dict[str, dict[str, Any]],
    known: set[str],
    at: Any,
    problems: list[str],
) -> FieldRule | None:
    where = at("fields", target)
    if isinstance(spec, str):
        spec = {"expr": spec}
    if not isinstance(spec, dict):
        problems.append(f"{where}: field {target!r}: give an expression or a mapping with 'expr'")
        return None
    start = len(problems)
    for key in sorted(set(spec) - _RULE_KEYS):
        problems.append(f"{at('fields', target, str(key))}: field {target!r}: unknown key {key!r}")
    has_expr, has_const = "expr" in spec, "const" in spec
    if has_expr == has_const:
        problems.append(f"{where}: field {target!r}: give exactly one of 'expr' or 'const'")
    when = None
    if "when" in spec:
        when = _compile(target, spec["when"], lookups, known, at("fields", target, "when"))
        if isinstance(when, str):
            problems.append(when)
    compiled = None
    if has_expr:
        compiled = _compile(target, spec["expr"], lookups, known, at("fields", target, "expr"))
        if isinstance(compiled, str):
            problems.append(compiled)
            compiled = None
    type_name = spec.get("type")
    if type_name is not None and type_name not in TYPES:
        problems.append(
            f"{at('fields', target, 'type')}: field {target!r}: unknown type {type_name!r} "
            f"(one of {', '.join(TYPES)})"
        )
    for flag in ("required", "pii"):
        if not isinstance(spec.get(flag, False), bool):
            problems.append(f"{at('fields', target, flag)}: field {target!r}: {flag} is true/false")
    if any(not part for part in target.split(".")):
        problems.append(f"{where}: field {target!r}: empty part in dotted target")
    if len(problems) > start:
        return None
    return FieldRule(
        target=target,
        path=tuple(target.split(".")),
        expression=spec.get("expr"),
        compiled=compiled,
        const=spec.get("const", _MISSING),
        default=spec.get("default", _MISSING),
        required=bool(spec.get("required", False)),
        type=type_name,
        pii=bool(spec.get("pii", False)),
        where=where,
        when=when,
    )


def _compile(
    target: str, expr: Any, lookups: dict[str, dict[str, Any]], known: set[str], where: str
) -> Any:
    """A compiled expression, or a problem description (str)."""
    if not isinstance(expr, str) or not expr.strip():
        return f"{where}: field {target!r}: 'expr' must be a non-empty JMESPath expression"
    try:
        compiled = jmespath.compile(expr)
    except JMESPathError as exc:
        reason = str(exc).splitlines()[0]
        return f"{where}: field {target!r}: bad expression {expr!r}: {reason}"
    for node in _walk(compiled.parsed):
        if node.get("type") != "function_expression":
            continue
        name = node.get("value")
        if name not in known:
            return f"{where}: field {target!r}: unknown function {name}()"
        children = node.get("children") or []
        if name == "lookup" and children and children[0].get("type") == "literal":
            table = children[0].get("value")
            if table not in lookups:
                return f"{where}: field {target!r}: unknown lookup table {table!r}"
    return compiled


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for child in node.get("children", []) or []:
            yield from _walk(child)


def _check_paths(rules: list[FieldRule], problems: list[str]) -> None:
    """A target cannot be both a value and the parent of another target."""
    leaves = {rule.path: rule for rule in rules}
    for rule in rules:
        for end in range(1, len(rule.path)):
            parent = leaves.get(rule.path[:end])
            if parent is not None:
                problems.append(
                    f"{rule.where}: field {rule.target!r} sits inside {parent.target!r}, "
                    "which is already a value"
                )


def _check_requires(requires: Any, rules: list[FieldRule], at: Any, problems: list[str]) -> None:
    """``requires``: the target API's mandatory fields; each needs a rule that is required
    (or a constant), so that no record can reach the API without it."""
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        problems.append(f"{at('requires')}: 'requires' lists target field names")
        return
    by_target = {rule.target: rule for rule in rules}
    for target in requires:
        rule = by_target.get(target)
        if rule is None:
            problems.append(f"{at('requires')}: the target requires {target!r}; no field fills it")
        elif not (rule.required or rule.compiled is None or not is_missing(rule.default)):
            problems.append(
                f"{rule.where}: field {target!r} is required by the target: "
                "mark it required: true or give it a default"
            )


def is_missing(value: Any) -> bool:
    return value is _MISSING
