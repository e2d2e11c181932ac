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

A map whose target needs several calls per new starter declares ordered ``steps`` instead of
``fields``; each step has its own request, fields and record id, and later steps read earlier
steps' ids as ``steps.<name>.id``::

    steps:
      - name: employee
        path: /employees
        find: {path: "/employees?externalId={payload.externalId}", id: "items[0].id",
               update: {method: PUT, path: "/employees/{id}"}}
        fields: {...}
      - name: bank_account
        path: "/employees/{steps.employee.id}/bank-accounts"
        when: answer(onboarding, `13`)
        fields: {...}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import yaml

from worker.errors import ConfigError
from worker.mapping.account_checks import AccountCheck, account_checks
from worker.mapping.documents import DocumentsSpec, documents_section
from worker.mapping.expressions import BUILTINS, At, Context, compile_checked, step_references
from worker.mapping.functions import function_names, options_for
from worker.mapping.requests import (
    METHODS,
    Accept,
    Find,
    RecordId,
    UrlTemplate,
    accept_rule,
    find_rule,
    record_id_rule,
    template,
)
from worker.mapping.types import TYPES, declared_type_problems
from worker.yamlfile import read_yaml

_SINGLE_KEYS = {"fields", "requires", "body", "find", "accept"}
_TOP_KEYS = {"name", "description", "lookups", "steps", "check", "documents"} | _SINGLE_KEYS
_STEP_KEYS = {"name", "description", "method", "path", "when", "record_id"} | _SINGLE_KEYS
_RULE_KEYS = {"expr", "const", "default", "required", "type", "pii", "description", "when"}
_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
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
class Step:
    """One request of a target: a payload from its own field rules."""

    name: str
    rules: tuple[FieldRule, ...]
    body: str = "object"  # "array": a one-element array of the object (Xero's style)
    method: str | None = None  # None: hris.method
    path: UrlTemplate | None = None  # None: hris.url itself
    record_id: RecordId | None = None  # None: hris.id_from / hris.id_path
    find: Find | None = None
    when: Any = None  # a compiled condition: the step is left out when it is falsy
    accept: Accept | None = None  # None: a success status is enough


@dataclass(frozen=True, slots=True)
class FieldMap:
    """A validated field map, ready to evaluate."""

    name: str
    source: Path
    version: str
    steps: tuple[Step, ...]
    options: jmespath.Options
    multi_step: bool = False  # declared with `steps:` (payloads are keyed by step name)
    checks: tuple[AccountCheck, ...] = ()  # what `hirebridge check` reads from the account
    lookups: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: DocumentsSpec | None = None  # the offer's documents it sends (after the steps)
    when: Any = None  # an applications map's top-level `when:`: which records it takes

    @property
    def rules(self) -> tuple[FieldRule, ...]:
        return tuple(rule for step in self.steps for rule in step.rules)


def load_field_map(path: Path, *, choosing: bool = False) -> FieldMap:
    """Read and validate ``path``; ConfigError lists every problem with file:line:col.

    ``choosing``: the map may have a top-level ``when:`` saying which records it takes (an
    applications map)."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read field map: {exc}"]) from None
    data, marks, duplicates = _parse(text, path)
    version = hashlib.sha256(raw).hexdigest()[:12]
    return _build(data, marks, path, version, duplicates, choosing)


def _parse(text: str, path: Path) -> tuple[Any, dict[tuple[str, ...], str], list[str]]:
    """The map's data, where each key is (file:line:col), and its keys given twice."""
    document = read_yaml(text, path)
    marks: dict[tuple[str, ...], str] = {}
    if document.node is not None:
        _collect_marks(document.node, (), marks, path)
    return document.data, marks, document.duplicates


def _collect_marks(
    node: yaml.Node, prefix: tuple[str, ...], marks: dict[tuple[str, ...], str], path: Path
) -> None:
    marks.setdefault(prefix, f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}")
    if len(prefix) >= 6:
        return
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            marks[key] = f"{path}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
            _collect_marks(value_node, key, marks, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_marks(item, (*prefix, str(index)), marks, path)


def _build(
    data: Any, marks: dict[tuple[str, ...], str], path: Path, version: str, duplicates: list[str],
    choosing: bool = False,
) -> FieldMap:  # fmt: skip
    problems = list(duplicates)
    allowed = _TOP_KEYS | ({"when"} if choosing else set())

    def at(*keys: str) -> str:
        for end in range(len(keys), -1, -1):
            if keys[:end] in marks:
                return marks[keys[:end]]
        return str(path)

    if not isinstance(data, dict):
        raise ConfigError(
            [*problems, f"{at()}: a field map is a mapping with 'fields' (and 'lookups')"]
        )
    for key in sorted(set(data) - allowed, key=str):
        problems.append(f"{at(str(key))}: unknown key {key!r} (allowed: {sorted(allowed)})")
    lookups = _lookups(data.get("lookups", {}), at, problems)
    options = options_for(lookups)
    context = Context(lookups, function_names() | BUILTINS, problems)
    if "steps" in data:
        for key in sorted(_SINGLE_KEYS & set(data)):
            problems.append(f"{at(key)}: {key!r} belongs inside each step when a map has 'steps'")
        steps = _steps(data["steps"], at, context)
    else:
        steps = [_step("record", data, lambda *k: at(*k), context, single=True)]
    checks = account_checks(data["check"], at, context) if "check" in data else ()
    documents = None
    if "documents" in data:
        names = {step.name for step in steps if step is not None} if "steps" in data else None
        documents = documents_section(data["documents"], at, context, _rule, names)
    when = None
    if choosing and "when" in data:
        when = compile_checked("'when'", data["when"], context, at("when"))
    if problems:
        raise ConfigError(problems)
    name = data.get("name") if isinstance(data.get("name"), str) else path.stem
    valid = tuple(step for step in steps if step is not None)
    return FieldMap(str(name), path, version, valid, options, "steps" in data, checks, lookups,
                    documents, when)  # fmt: skip


def _steps(raw: Any, at: At, context: Context) -> list[Step | None]:
    if not isinstance(raw, list) or not raw:
        context.problems.append(f"{at('steps')}: 'steps' is a list of steps, each with 'fields'")
        return []
    steps: list[Step | None] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw):

        def step_at(*keys: str, index: int = index) -> str:
            return at("steps", str(index), *keys)

        if not isinstance(spec, dict):
            context.problems.append(f"{step_at()}: a step is a mapping with 'name' and 'fields'")
            continue
        name = spec.get("name")
        if not isinstance(name, str) or not _STEP_NAME.match(name):
            context.problems.append(
                f"{step_at('name')}: step {index + 1}: 'name' is letters, digits and _ "
                "(it is how later steps refer to it: steps.<name>.id)"
            )
            name = f"step{index + 1}"
        elif name in seen:
            context.problems.append(f"{step_at('name')}: step name {name!r} is used twice")
        seen.add(name)
        if "path" not in spec:
            context.problems.append(f"{step_at()}: step {name!r}: give its 'path'")
        steps.append(_step(name, spec, step_at, context, single=False, earlier=seen - {name}))
    return steps


def _step(
    name: str,
    spec: dict[str, Any],
    at: At,
    context: Context,
    *,
    single: bool,
    earlier: set[str] | None = None,
) -> Step | None:
    problems = context.problems
    start = len(problems)
    label = "" if single else f"step {name!r}: "
    if not single:
        for key in sorted(set(spec) - _STEP_KEYS, key=str):
            problems.append(f"{at(str(key))}: {label}unknown key {key!r}")
    fields = spec.get("fields")
    if not isinstance(fields, dict) or not fields:
        problems.append(f"{at('fields')}: {label}'fields' must map each target field to a rule")
        fields = {}
    rules = []
    for target, rule_spec in fields.items():
        rule = _rule(str(target), rule_spec, context, at)
        if rule is not None:
            rules.append(rule)
    _check_paths(rules, problems)
    _check_requires(spec.get("requires", []), rules, at, problems)
    body = spec.get("body", "object")
    if body not in ("object", "array"):
        problems.append(f"{at('body')}: {label}'body' is object or array, not {body!r}")
    method = spec.get("method")
    if method is not None and method not in METHODS:
        problems.append(f"{at('method')}: {label}'method' is one of {', '.join(METHODS)}")
    path = None
    if "path" in spec:
        path = template(spec["path"], at("path"), label, context)
    when = None
    if "when" in spec:
        when = compile_checked(f"{label}'when'", spec["when"], context, at("when"))
    find = find_rule(spec["find"], at, label, context) if "find" in spec else None
    record_id = (
        record_id_rule(spec["record_id"], at, label, problems) if "record_id" in spec else None
    )
    accept = accept_rule(spec["accept"], at, label, context) if "accept" in spec else None
    for rule in rules:
        _check_step_refs(rule, earlier or set(), problems)
    if len(problems) > start:
        return None
    return Step(
        name=name,
        rules=tuple(rules),
        body=str(body),
        method=method,
        path=path,
        record_id=record_id,
        find=find,
        when=when,
        accept=accept,
    )


def _lookups(raw: Any, at: At, problems: list[str]) -> dict[str, dict[str, Any]]:
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


def _rule(target: str, spec: Any, context: Context, at: At) -> FieldRule | None:
    problems = context.problems
    where = at("fields", target)
    if isinstance(spec, str):
        spec = {"expr": spec}
    if not isinstance(spec, dict):
        problems.append(f"{where}: field {target!r}: give an expression or a mapping with 'expr'")
        return None
    start = len(problems)
    for key in sorted(set(spec) - _RULE_KEYS, key=str):
        problems.append(f"{at('fields', target, str(key))}: field {target!r}: unknown key {key!r}")
    has_expr, has_const = "expr" in spec, "const" in spec
    if has_expr == has_const:
        problems.append(f"{where}: field {target!r}: give exactly one of 'expr' or 'const'")
    when = None
    if "when" in spec:
        when = compile_checked(
            f"field {target!r}", spec["when"], context, at("fields", target, "when")
        )
    compiled = None
    if has_expr:
        compiled = compile_checked(
            f"field {target!r}", spec["expr"], context, at("fields", target, "expr")
        )
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
    if compiled is not None or has_const:
        for problem in declared_type_problems(
            compiled.parsed if compiled is not None else None,
            declared=type_name,
            const=spec.get("const", _MISSING),
            default=spec.get("default", _MISSING),
            lookups=context.lookups,
            missing=_MISSING,
        ):
            problems.append(
                f"{at('fields', target, 'expr' if has_expr else 'const')}: "
                f"field {target!r}: {problem}"
            )
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


def _check_step_refs(rule: FieldRule, earlier: set[str], problems: list[str]) -> None:
    """``steps.X.id`` in an expression must name a step that runs before this one."""
    for compiled in (rule.compiled, rule.when):
        if compiled is None:
            continue
        for name in step_references(compiled.parsed):
            if name not in earlier:
                problems.append(
                    f"{rule.where}: field {rule.target!r}: steps.{name} is not an earlier step"
                )


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


def _check_requires(requires: Any, rules: list[FieldRule], at: At, problems: list[str]) -> None:
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
