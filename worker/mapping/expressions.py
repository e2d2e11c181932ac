"""Compiling and checking one field-map expression: syntax, known functions and lookup tables,
arity and argument types (``worker.mapping.types``). Problems are returned as text, never raised,
so that a map's loader can list every problem at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from worker.mapping.types import call_problems

At = Callable[..., str]  # (*keys) -> "file:line:col" of that key in the map

BUILTINS = {
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


@dataclass
class Context:
    """What every expression of one map is checked against, and where its problems go."""

    lookups: dict[str, dict[str, Any]]
    known: set[str]
    problems: list[str]


def compile_checked(what: str, expr: Any, context: Context, where: str) -> Any:
    """A compiled expression, or None after adding the problem to the context."""
    problem = problem_in(what, expr, context)
    if isinstance(problem, str):
        context.problems.append(f"{where}: {problem}")
        return None
    return problem


def problem_in(what: str, expr: Any, context: Context) -> Any:
    if not isinstance(expr, str) or not expr.strip():
        return f"{what}: 'expr' must be a non-empty JMESPath expression"
    try:
        compiled = jmespath.compile(expr)
    except JMESPathError as exc:
        reason = str(exc).splitlines()[0]
        return f"{what}: bad expression {expr!r}: {reason}"
    for node in walk(compiled.parsed):
        if node.get("type") != "function_expression":
            continue
        name = node.get("value")
        if name not in context.known:
            return f"{what}: unknown function {name}()"
        children = node.get("children") or []
        if name == "lookup" and children and children[0].get("type") == "literal":
            table = children[0].get("value")
            if table not in context.lookups:
                return f"{what}: unknown lookup table {table!r}"
    for problem in call_problems(compiled.parsed, context.lookups):
        return f"{what}: {problem}"
    return compiled


def walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for child in node.get("children", []) or []:
            yield from walk(child)


def step_references(parsed: Any) -> set[str]:
    """The step names an expression reads through ``steps.<name>``."""
    found = set()
    for node in walk(parsed):
        children = node.get("children") or []
        if (
            node.get("type") == "subexpression"
            and len(children) >= 2
            and children[0] == {"type": "field", "children": [], "value": "steps"}
            and children[1].get("type") == "field"
        ):
            found.add(str(children[1]["value"]))
    return found
