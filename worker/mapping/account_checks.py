"""A map's ``check:`` section: what ``hirebridge check`` reads from the target account, so that a
lookup value the account does not have, or a custom field it lacks, is named before the first
hire is refused, not after::

    check:
      - get: meta/lists              # resolved against hris.url like a link in a web page
        lookups:                     # every value of each table must be among what this gives
          departments: "[?alias=='department'].options[] | [?archived=='no'].name"
      - get: company/people/fields
        expect: "contains([].jsonPath, 'work.customColumns.pageupOfferId')"
        message: "create the custom field: see the header of hibob.yaml"

Evaluation is pure (a reply body in, problems out); ``worker.service.check`` does the GETs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jmespath.exceptions import JMESPathError

from worker.mapping.expressions import At, Context, compile_checked

_KEYS = {"get", "lookups", "expect", "message"}


@dataclass(frozen=True, slots=True)
class AccountCheck:
    """One GET on the target account and what its reply must contain."""

    get: str
    lookups: tuple[tuple[str, Any], ...] = ()  # (lookup table, compiled expression)
    expect: Any = None  # compiled condition over the reply
    message: str = ""  # shown when ``expect`` does not hold


def account_checks(raw: Any, at: At, context: Context) -> tuple[AccountCheck, ...]:
    """Parse a map's ``check:`` list; problems go to the context with file:line:col."""
    if not isinstance(raw, list) or not raw:
        context.problems.append(f"{at('check')}: 'check' is a list of {{get: ..., lookups: ...}}")
        return ()
    checks = []
    for index, spec in enumerate(raw):
        check = _one(spec, lambda *k, i=index: at("check", str(i), *k), context)
        if check is not None:
            checks.append(check)
    return tuple(checks)


def _one(spec: Any, at: At, context: Context) -> AccountCheck | None:
    problems = context.problems
    start = len(problems)
    if not isinstance(spec, dict) or not isinstance(spec.get("get"), str) or not spec["get"]:
        problems.append(f"{at()}: a check needs 'get' (a path on the target's API)")
        return None
    for key in sorted(set(spec) - _KEYS, key=str):
        problems.append(f"{at(str(key))}: unknown key {key!r} in a check")
    if "lookups" not in spec and "expect" not in spec:
        problems.append(f"{at()}: a check needs 'lookups' or 'expect'")
    lookups = []
    tables = spec.get("lookups", {})
    if not isinstance(tables, dict):
        problems.append(f"{at('lookups')}: 'lookups' maps lookup tables to expressions")
        tables = {}
    for table, expression in tables.items():
        if str(table) not in context.lookups:
            problems.append(f"{at('lookups', str(table))}: unknown lookup table {table!r}")
            continue
        compiled = compile_checked(
            f"check of lookup {table!r}", expression, context, at("lookups", str(table))
        )
        lookups.append((str(table), compiled))
    expect = None
    if "expect" in spec:
        expect = compile_checked("check 'expect'", spec["expect"], context, at("expect"))
        if not isinstance(spec.get("message"), str) or not spec["message"].strip():
            problems.append(f"{at('expect')}: 'expect' needs a 'message' for when it fails")
    if len(problems) > start:
        return None
    return AccountCheck(spec["get"], tuple(lookups), expect, str(spec.get("message", "")))


def check_problems(
    check: AccountCheck, body: Any, tables: Mapping[str, Mapping[str, Any]], options: Any
) -> list[str]:
    """What ``body`` (the reply to ``check.get``) says is missing in the account."""
    problems = []
    for table, compiled in check.lookups:
        try:
            found = compiled.search(body, options=options)
        except (JMESPathError, ValueError, TypeError) as exc:
            problems.append(f"lookup {table!r}: cannot read the account's list: {exc}")
            continue
        allowed = {str(item) for item in _as_list(found)}
        unknown = sorted(
            {str(v) for v in tables[table].values() if v is not None and str(v) not in allowed}
        )
        for value in unknown:
            problems.append(
                f"lookup {table!r}: {value!r} is not in the account's list (GET {check.get})"
            )
    if check.expect is not None:
        try:
            holds = check.expect.search(body, options=options)
        except (JMESPathError, ValueError, TypeError):
            holds = False
        if holds in (None, False, "", [], {}, 0):
            problems.append(f"{check.message} (GET {check.get})")
    return problems


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return [item for item in value if not isinstance(item, dict | list)]
    return [value]
