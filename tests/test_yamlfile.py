"""Reading YAML that people edit: keys given twice are found at any depth, naming both places."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.yamlfile import read_yaml

SOURCE = Path("conf.yaml")


def test_keys_that_yaml_reads_as_the_same_value_or_text_collide() -> None:
    document = read_yaml("a:\n  on: 1\n  true: 2\n  '7': x\n  7: y\n  7.0: z\n", SOURCE)
    assert document.data == {"a": {True: 2, "7": "x", 7: "z"}}
    assert [p.split(",")[0] for p in document.duplicates] == [
        "conf.yaml:3:3: duplicate key 'a.true'",
        "conf.yaml:5:3: duplicate key 'a.7'",
        "conf.yaml:6:3: duplicate key 'a.7.0'",
    ]


def test_lists_of_mappings_are_searched_and_aliases_walked_once() -> None:
    text = "items:\n  - &one {k: 1, k: 2}\n  - *one\n  - {k: 1}\n"
    (problem,) = read_yaml(text, SOURCE).duplicates
    assert problem == (
        "conf.yaml:2:17: duplicate key 'items[0].k', first given at conf.yaml:2:11; "
        "YAML silently keeps only the later one"
    )


def test_a_clean_document_and_an_empty_one_have_no_duplicates() -> None:
    assert read_yaml("a: {b: 1, c: [1, 1]}\n", SOURCE).duplicates == []
    empty = read_yaml("# nothing\n", SOURCE)
    assert (empty.data, empty.node, empty.duplicates) == (None, None, [])


def test_a_syntax_error_names_the_spot() -> None:
    with pytest.raises(ConfigError) as caught:
        read_yaml("a: [1,\n", SOURCE)
    assert caught.value.problems[0].startswith("conf.yaml:2:1: YAML syntax")
