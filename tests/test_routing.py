"""Choosing an offer's targets: a pure function over the source document and the routes."""

from __future__ import annotations

from typing import Any

import pytest

from worker.errors import MappingError
from worker.routing import choose_targets, compile_routes, no_route_reason, route_problems
from worker.settings import RouteSettings

ROUTES = [
    RouteSettings(
        source="group", target="payroll_au", when="offer.Location.Country == 'Australia'"
    ),
    RouteSettings(
        source="group", target="payroll_nz", when="offer.Location.Country == 'New Zealand'"
    ),
    RouteSettings(source="group", target="hris"),
    RouteSettings(source="au", target="payroll_au"),
]


def offer_in(country: Any) -> dict[str, Any]:
    return {"offer": {"Location": {"Name": "X", "Country": country}}, "onboarding": {}}


def test_every_route_that_holds_chooses_its_target_in_route_order() -> None:
    group = compile_routes(ROUTES, "group")
    assert group.targets == ("payroll_au", "payroll_nz", "hris")
    assert choose_targets(group, offer_in("New Zealand")).targets == ("payroll_nz", "hris")
    assert choose_targets(group, offer_in("Australia")).targets == ("payroll_au", "hris")
    au = compile_routes(ROUTES, "au")
    assert choose_targets(au, offer_in(None)).targets == ("payroll_au",), "no when: every offer"


def test_a_route_for_every_source_applies_to_each() -> None:
    routes = [RouteSettings(source="*", target="payroll"), RouteSettings(source="a", target="x")]
    assert compile_routes(routes, "a").targets == ("payroll", "x")
    assert compile_routes(routes, "b").targets == ("payroll",)
    assert route_problems(routes, {"a": 1, "b": 2}, {"payroll": 1, "x": 1}) == []


def test_a_target_chosen_by_two_routes_is_chosen_once() -> None:
    routes = compile_routes(
        [RouteSettings(source="s", target="hris", when="offer.A"),
         RouteSettings(source="s", target="hris", when="offer.B")], "s",
    )  # fmt: skip
    assert choose_targets(routes, {"offer": {"A": 1, "B": True}}).targets == ("hris",)


def test_no_route_names_the_conditions_and_what_they_looked_at() -> None:
    routes = compile_routes(ROUTES[:2], "group")
    decision = choose_targets(routes, offer_in("Fiji"))
    assert decision.targets == ()
    reason = no_route_reason(routes, decision)
    assert reason.startswith("no route: no condition held (payroll_au: offer.Location.Country")
    assert 'the conditions looked at offer.Location.Country = "Fiji"' in reason
    missing = no_route_reason(routes, choose_targets(routes, {"offer": {}}))
    assert "offer.Location.Country = null" in missing


def test_conditions_use_the_map_functions_and_a_failing_one_is_an_error() -> None:
    routes = compile_routes(
        [
            RouteSettings(
                source="s", target="nz", when="country_code(offer.Location.Country) == 'NZ'"
            )
        ],
        "s",
    )
    assert choose_targets(routes, offer_in("new zealand")).targets == ("nz",)
    with pytest.raises(MappingError, match=r"route to .nz.: its condition .* failed"):
        choose_targets(routes, offer_in("Atlantis"))


def test_bad_routes_are_all_named() -> None:
    problems = route_problems(
        [RouteSettings(source="nope", target="hris"),
         RouteSettings(source="au", target="payrol"),
         RouteSettings(source="au", target="hris", when="offer.Location.Country =="),
         RouteSettings(source="au", target="hris", when="nosuch(offer)")],
        {"au": object(), "nz": object()}, {"hris": object()},
    )  # fmt: skip
    assert problems[0] == "routes.0: unknown source 'nope' (sources: au, nz)"
    assert problems[1] == "routes.1: unknown target 'payrol' (targets: hris)"
    assert problems[2].startswith("routes.2: when: bad expression")
    assert problems[3] == "routes.3: when: unknown function nosuch()"
    assert problems[4] == "sources.nz: no route takes its offers anywhere (add one to routes)"
