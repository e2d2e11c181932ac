"""Which targets an offer goes to: a pure function over its source document and the routes.

A route names a source, a target and an optional ``when``: a JMESPath condition over the same
document the field maps see (``offer``, ``onboarding``, ``application``), with the same
functions (``answer()``, ``country_code()``...). Every route whose condition holds chooses its
target, so one offer can go to an HRIS and a payroll. An offer no route chooses is not delivered
anywhere, nor marked processed: it parks with "no route", naming the values the conditions
looked at, so that an admin sees why (a country spelt differently, a missing answer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from worker.errors import MappingError
from worker.mapping.expressions import BUILTINS, Context, compile_checked
from worker.mapping.functions import function_names, options_for
from worker.settings.targets import RouteSettings

_FAILURES = (JMESPathError, ValueError, TypeError, OverflowError)
EVERY_SOURCE = "*"  # a route's source: every source (a folder of tenants, all to one payroll)
_SHOWN_CHARS = 60


@dataclass(frozen=True, slots=True)
class Route:
    target: str
    when: ParsedResult | None  # None: every offer of the source
    condition: str | None  # the expression as written, for messages


@dataclass(frozen=True, slots=True)
class Routes:
    """The routes of one source, in the order they are configured."""

    source: str
    routes: tuple[Route, ...]
    options: jmespath.Options

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target an offer of this source may go to."""
        return tuple(dict.fromkeys(route.target for route in self.routes))


@dataclass(frozen=True, slots=True)
class Decision:
    targets: tuple[str, ...]  # each chosen target once, in route order
    looked_at: tuple[tuple[str, str], ...]  # (path, value as JSON) the conditions read


def compile_routes(routes: Iterable[RouteSettings], source: str) -> Routes:
    """The routes of ``source``; the settings have already refused any that does not parse."""
    compiled = tuple(
        Route(r.target, jmespath.compile(r.when) if r.when else None, r.when)
        for r in routes
        if r.source in (source, EVERY_SOURCE)
    )
    return Routes(source, compiled, options_for({}))


def choose_targets(routes: Routes, document: Any) -> Decision:
    """The targets whose routes hold for ``document``. A condition that cannot be evaluated
    (a function refusing its argument) is a MappingError naming the route, not a silent no."""
    chosen: list[str] = []
    looked_at: dict[str, str] = {}
    for route in routes.routes:
        if route.when is None:
            chosen.append(route.target)
            continue
        looked_at.update(_values_read(route.when, document, routes.options))
        try:
            holds = route.when.search(document, options=routes.options)
        except _FAILURES as exc:
            reason = str(exc).splitlines()[0][:200]
            raise MappingError(
                [f"route to {route.target!r}: its condition {route.condition!r} failed: {reason}"]
            ) from None
        if holds not in (None, False, "", [], {}, 0):
            chosen.append(route.target)
    return Decision(tuple(dict.fromkeys(chosen)), tuple(looked_at.items()))


def no_route_reason(routes: Routes, decision: Decision) -> str:
    """Why no route chose an offer, in the words of its conditions and the values they saw."""
    conditions = "; ".join(f"{r.target}: {r.condition}" for r in routes.routes if r.condition)
    seen = ", ".join(f"{path} = {value}" for path, value in decision.looked_at) or "nothing"
    return f"no route: no condition held ({conditions}); the conditions looked at {seen}"


def _values_read(when: ParsedResult, document: Any, options: jmespath.Options) -> dict[str, str]:
    """Each dotted path the condition reads, with the value it has in ``document``."""
    values = {}
    for node in _paths(dict(when.parsed)):
        path = _dotted(node)
        if path is None or path in values:
            continue
        try:
            value = ParsedResult(path, node).search(document, options=options)  # type: ignore[arg-type]
        except _FAILURES:
            continue
        shown = json.dumps(value, ensure_ascii=False, default=str)
        values[path] = shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS] + "..."
    return values


def _paths(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """The outermost field paths of an expression (``a.b.c``, not also ``a``)."""
    if node.get("type") in ("field", "subexpression") and _dotted(node) is not None:
        yield node
        return
    for child in node.get("children") or []:
        if isinstance(child, dict):
            yield from _paths(child)


def _dotted(node: dict[str, Any]) -> str | None:
    if node.get("type") == "field":
        return str(node["value"])
    if node.get("type") == "subexpression":
        parts = [_dotted(child) for child in node.get("children") or []]
        if all(parts):
            return ".".join(str(part) for part in parts)
    return None


def route_problems(
    routes: Iterable[RouteSettings], sources: Mapping[str, Any], targets: Mapping[str, Any]
) -> list[str]:
    """Routes to unknown sources or targets, conditions that do not parse, sources no route
    serves. Every problem, each naming the route by its place in the list."""
    problems: list[str] = []
    context = Context({}, function_names() | BUILTINS, problems)
    served = set()
    for index, route in enumerate(routes):
        where = f"routes.{index}"
        if route.source not in sources and route.source != EVERY_SOURCE:
            problems.append(f"{where}: unknown source {route.source!r} (sources: "
                            f"{', '.join(sorted(sources)) or 'none'})")  # fmt: skip
        if route.target not in targets:
            problems.append(f"{where}: unknown target {route.target!r} (targets: "
                            f"{', '.join(sorted(targets)) or 'none'})")  # fmt: skip
        if route.when is not None:
            compile_checked("when", route.when, context, where)
        served.add(route.source)
    problems += [
        f"sources.{name}: no route takes its offers anywhere (add one to routes)"
        for name in sources
        if name not in served and EVERY_SOURCE not in served
    ]
    return problems
