"""Loading and validating field maps: every problem at once, each with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from worker.errors import ConfigError
from worker.mapping.loader import load_field_map


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_field_map(path)
    return caught.value.problems


def test_shipped_example_map_is_valid() -> None:
    field_map = load_field_map(REPO / "mappings" / "example_hris.yaml")
    assert field_map.name == "example-hris"
    assert len(field_map.version) == 12
    assert {"externalId", "tax.taxFileNumber", "location.state"} <= {
        rule.target for rule in field_map.rules
    }


def test_every_problem_is_listed_with_its_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: broken\n"
        "lookups:\n"
        "  kinds: {a: b}\n"
        "fields:\n"
        "  a: {expr: 'offer.[', required: true}\n"
        "  b: nosuch(offer.x)\n"
        "  c: \"lookup('missing', offer.x)\"\n"
        "  d: {expr: offer.x, type: text}\n"
        "  e: {expr: offer.x, const: 1}\n"
        "  f: {expr: offer.x, colour: red}\n",
    )
    problems = problems_of(path)
    assert len(problems) == 6
    joined = "\n".join(problems)
    assert f"{path}:5:7: field 'a': bad expression" in joined
    assert f"{path}:6:3: field 'b': unknown function nosuch()" in joined
    assert f"{path}:7:3: field 'c': unknown lookup table 'missing'" in joined
    assert f"{path}:8:22: field 'd': unknown type 'text'" in joined
    assert f"{path}:9:3: field 'e': give exactly one of 'expr' or 'const'" in joined
    assert f"{path}:10:22: field 'f': unknown key 'colour'" in joined


def test_yaml_syntax_error_points_at_the_spot(tmp_path: Path) -> None:
    path = write(tmp_path, "fields:\n  a: [unclosed\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3:1: YAML syntax")


def test_a_target_cannot_be_a_value_and_a_parent(tmp_path: Path) -> None:
    path = write(tmp_path, "fields:\n  pay: offer.Salary\n  pay.amount: offer.Salary.Amount\n")
    (problem,) = problems_of(path)
    assert "'pay.amount' sits inside 'pay'" in problem


def test_unknown_top_level_key_and_empty_fields(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "nmae: x\nfields: {}\n"))
    assert any("unknown key 'nmae'" in p for p in problems)
    assert any("'fields' must map each target field" in p for p in problems)


def test_version_changes_with_content(tmp_path: Path) -> None:
    first = load_field_map(write(tmp_path, "fields:\n  a: offer.x\n")).version
    second = load_field_map(write(tmp_path, "fields:\n  a: offer.y\n")).version
    assert first != second


STEPS = """\
steps:
  - name: employee
    path: /employees
    find: {path: "/employees?externalId={payload.id}", id: "items[0].id",
           update: {method: PUT, path: "/employees/{id}"}}
    fields:
      id: offer.Id
  - name: bank
    path: "/employees/{steps.employee.id}/bank"
    when: offer.Bank
    fields:
      owner: steps.employee.id
"""


def test_steps_load_in_order_with_their_requests(tmp_path: Path) -> None:
    field_map = load_field_map(write(tmp_path, STEPS))
    assert field_map.multi_step
    employee, bank = field_map.steps
    assert (employee.name, bank.name) == ("employee", "bank")
    assert employee.find is not None and employee.find.update_method == "PUT"
    assert bank.path is not None and bank.path.parts[0][0] == "{steps.employee.id}"
    assert bank.when is not None


def test_step_problems_point_into_the_step(tmp_path: Path) -> None:
    text = (
        "fields: {a: b}\n"
        "steps:\n"
        "  - name: employee\n"
        "    method: GET\n"
        "    fields:\n"
        "      owner: steps.bank.id\n"
        "  - name: employee\n"
        "    path: '/x/{nosuch(a)}'\n"
        "    colour: red\n"
        "    fields: {a: b}\n"
    )
    path = write(tmp_path, text)
    joined = "\n".join(problems_of(path))
    assert f"{path}:1:1: 'fields' belongs inside each step" in joined
    assert f"{path}:3:5: step 'employee': give its 'path'" in joined
    assert f"{path}:4:5: step 'employee': 'method' is one of POST, PUT, PATCH" in joined
    assert f"{path}:6:7: field 'owner': steps.bank is not an earlier step" in joined
    assert f"{path}:7:5: step name 'employee' is used twice" in joined
    assert f"{path}:8:5: step 'employee': path part {{nosuch(a)}}: unknown function" in joined
    assert f"{path}:9:5: step 'employee': unknown key 'colour'" in joined


def duplicate(path: Path, key: str, later: str, first: str) -> str:
    return f"{path}:{later}: duplicate key {key!r}, first given at {path}:{first}"


def test_a_field_given_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "fields:\n  email: offer.Email\n  name: offer.Name\n  email: offer.X\n")
    (problem,) = problems_of(path)
    assert problem.startswith(duplicate(path, "fields.email", "4:3", "2:3"))


def test_keys_given_twice_at_every_depth_are_listed_with_the_other_problems(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "name: a\n"
        "lookups:\n"
        "  kinds: {a: b, a: c}\n"  # an entry of a table
        "  kinds: {}\n"  # a table
        "fields:\n"
        "  x: {expr: offer.x, expr: offer.y}\n"  # a rule's key
        "  y: nosuch(offer.y)\n"  # not a duplicate: reported alongside
        "  '1': offer.a\n"
        "  1: offer.b\n"  # the same target once YAML's int becomes text
        "name: b\n",  # a top-level key
    )
    problems = problems_of(path)
    assert problems[:5] == [
        p + "; YAML silently keeps only the later one"
        for p in (
            duplicate(path, "lookups.kinds.a", "3:17", "3:11"),
            duplicate(path, "lookups.kinds", "4:3", "3:3"),
            duplicate(path, "fields.x.expr", "6:22", "6:7"),
            duplicate(path, "fields.1", "9:3", "8:3"),
            duplicate(path, "name", "10:1", "1:1"),
        )
    ]
    assert problems[5:] == [f"{path}:7:3: field 'y': unknown function nosuch()"]


def test_keys_given_twice_inside_steps_and_their_look_ups(tmp_path: Path) -> None:
    text = STEPS.replace(
        '    find: {path: "/employees?externalId={payload.id}",',
        '    find: {path: "/employees?externalId={payload.id}", id: x,',
    ).replace(
        "      owner: steps.employee.id\n", "      owner: steps.employee.id\n      owner: a\n"
    )
    text += "    path: /other\n"
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert [p.split(", first")[0] for p in problems] == [
        f"{path}:4:63: duplicate key 'steps[0].find.id'",
        f"{path}:13:7: duplicate key 'steps[1].fields.owner'",
        f"{path}:14:5: duplicate key 'steps[1].path'",
    ]
    assert problems[0].split(", first given at ")[1].startswith(f"{path}:4:56;")


def test_a_merged_key_may_be_overridden_and_an_alias_is_not_a_duplicate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lookups:\n"
        "  base: &base {a: A, b: B}\n"
        "  more: {<<: *base, b: BB}\n"
        "  same: *base\n"
        "fields:\n"
        "  x: \"lookup('more', offer.x)\"\n",
    )
    field_map = load_field_map(path)
    assert field_map.rules[0].target == "x"
