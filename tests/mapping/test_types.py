"""Static type checks: validate-mappings catches what the map itself proves wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.mapping.loader import load_field_map


def problems_of(tmp_path: Path, fields: str, lookups: str = "") -> list[str]:
    path = tmp_path / "map.yaml"
    path.write_text(f"{lookups}fields:\n{fields}")
    with pytest.raises(ConfigError) as caught:
        load_field_map(path)
    return caught.value.problems


def test_wrong_number_of_arguments(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "  a: date(offer.StartDate)\n")
    assert ":2:3: field 'a': date() takes 2 argument(s), given 1" in problem


def test_literal_argument_of_the_wrong_type(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, '  a: "date(offer.StartDate, `5`)"\n')
    assert "argument 2 of date() is number, expected string" in problem


def test_nested_function_result_of_the_wrong_type(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "  a: round(upper(offer.x), `2`)\n")
    assert "argument 1 of round() is string, expected null or number" in problem


@pytest.mark.parametrize(
    ("rule", "wanted"),
    [
        ("{expr: \"date(offer.x, '%Y')\", type: number}", "number, but date() gives string"),
        ("{const: abc, type: integer}", "integer, but the constant is string"),
        ("{expr: offer.x, default: 'n/a', type: number}", "number, but the default is string"),
        ("{expr: \"lookup('kinds', offer.x)\", type: number}", "number, but lookup() gives string"),
        ("{expr: length(offer.x), type: string}", "string, but length() gives number"),
        ("{expr: '[offer.a, offer.b]', type: object}", "object, but it gives array"),
    ],
)  # fmt: skip
def test_declared_type_the_map_cannot_give(tmp_path: Path, rule: str, wanted: str) -> None:
    (problem,) = problems_of(tmp_path, f"  a: {rule}\n", "lookups:\n  kinds: {x: A}\n")
    assert f"declared type {wanted}" in problem


def test_what_depends_on_the_source_is_left_to_run_time(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "lookups:\n  mixed: {a: 1, b: two}\n"
        "fields:\n"
        "  a: {expr: offer.x, type: number}\n"
        "  b: {expr: \"lookup('mixed', offer.x)\", type: number}\n"
        "  c: {expr: to_number(offer.x), type: integer}\n"
        "  d: {expr: \"offer.x || 'none'\", type: string}\n"
    )
    assert len(load_field_map(path).rules) == 4
