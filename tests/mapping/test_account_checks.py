"""A map's ``check:`` section: validated with file:line, evaluated on a reply as a pure function."""

from __future__ import annotations

from pathlib import Path

from tests.mapping.test_loader import problems_of, write
from worker.mapping.account_checks import check_problems
from worker.mapping.loader import load_field_map

MAP = """\
lookups:
  departments: {Retail: Retail, Finance: Money, Unmapped: null}
check:
  - get: meta/lists
    lookups:
      departments: "[?alias=='department'].options[] | [?archived=='no'].name"
  - get: fields
    expect: "contains([].id, 'custom.offer')"
    message: create the custom field
fields: {a: "lookup('departments', x)"}
"""
LISTS = [
    {"alias": "department", "options": [
        {"name": "Retail", "archived": "no"}, {"name": "Money", "archived": "yes"}]},
    {"alias": "location", "options": [{"name": "Money", "archived": "no"}]},
]  # fmt: skip


def test_values_the_list_lacks_are_named_and_archived_options_do_not_count(
    tmp_path: Path,
) -> None:
    field_map = load_field_map(write(tmp_path, MAP))
    lists, fields = field_map.checks

    found = check_problems(lists, LISTS, field_map.lookups, field_map.options)

    assert found == ["lookup 'departments': 'Money' is not in the account's list (GET meta/lists)"]
    assert check_problems(fields, [{"id": "custom.offer"}], {}, field_map.options) == []
    assert check_problems(fields, [{"id": "other"}], {}, field_map.options) == [
        "create the custom field (GET fields)"
    ]


def test_numbers_and_strings_compare_as_text(tmp_path: Path) -> None:
    text = MAP.replace("{Retail: Retail, Finance: Money, Unmapped: null}", "{a: '2451001'}")
    field_map = load_field_map(write(tmp_path, text))
    reply = [{"alias": "department", "options": [{"name": 2451001, "archived": "no"}]}]
    assert check_problems(field_map.checks[0], reply, field_map.lookups, field_map.options) == []


def test_check_problems_point_at_the_spot(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lookups: {t: {a: b}}\n"
        "check:\n"
        "  - get: x\n"
        "    lookups: {nosuch: 'a', t: 'b[?'}\n"
        "  - get: y\n"
        "    expect: 'true'\n"
        "  - {lookups: {t: a}, colour: red}\n"
        "fields: {a: {const: 1}}\n",
    )
    joined = "\n".join(problems_of(path))
    assert f"{path}:4:15: unknown lookup table 'nosuch'" in joined
    assert f"{path}:4:28: check of lookup 't': bad expression 'b[?'" in joined
    assert f"{path}:6:5: 'expect' needs a 'message' for when it fails" in joined
    assert f"{path}:7:5: a check needs 'get'" in joined
