"""A step's request rules: the ``accept`` rule a successful reply must meet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mapping.test_loader import problems_of, write
from worker.mapping.loader import load_field_map

ODATA = """\
steps:
  - name: person
    path: /upsert
    accept:
      when: "d[?status == 'OK'] && !(d[?status != 'OK'])"
      reason: "d[?status != 'OK'].message"
    fields: {personIdExternal: {const: P1}}
"""


def accept_of(tmp_path: Path) -> Any:
    step = load_field_map(write(tmp_path, ODATA)).steps[0]
    assert step.accept is not None
    return step.accept, load_field_map(write(tmp_path, ODATA)).options


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        ({"d": [{"key": "PerPerson/personIdExternal=P1", "status": "OK", "httpCode": 200}]}, None),
        ({"d": [{"status": "ERROR", "message": "Invalid value for emailType", "httpCode": 400}]},
         "Invalid value for emailType"),
        ({"d": [{"status": "OK"}, {"status": "ERROR", "message": "second failed"},
                {"status": "ERROR", "message": None}]}, "second failed"),
        ({"d": []}, "the reply did not meet the map's accept rule"),
        (None, "the reply did not meet the map's accept rule"),
        ({"d": "not a list"}, "the reply did not meet the map's accept rule"),
    ],
    ids=["ok", "error-in-200", "one-of-several", "empty", "no-body", "odd-shape"],
)  # fmt: skip
def test_a_200_counts_only_when_the_accept_rule_holds(
    tmp_path: Path, body: Any, refusal: str | None
) -> None:
    accept, options = accept_of(tmp_path)
    assert accept.refusal(body, options) == refusal


def test_accept_problems_point_at_the_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "accept: {reason: message}\nfields: {a: {const: 1}}\nsteps_unused: 1\n",
    )
    joined = "\n".join(problems_of(path))
    assert f"{path}:1:1: 'accept' is {{when: <JMESPath over the reply>" in joined
    path = write(
        tmp_path,
        "accept: {when: 'd[?', reason: nosuch(d), colour: red}\nfields: {a: {const: 1}}\n",
    )
    joined = "\n".join(problems_of(path))
    assert f"{path}:1:10: accept when: bad expression 'd[?'" in joined
    assert f"{path}:1:23: accept reason: unknown function nosuch()" in joined
    assert f"{path}:1:42: unknown key 'colour' in 'accept'" in joined
