"""Applications maps: a top-level ``when:`` is theirs alone, and ``find:`` is required."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from worker.application_runtime import load_application_map
from worker.errors import ConfigError
from worker.mapping.loader import load_field_map

FIELDS = 'fields:\n  externalId: {expr: "to_string(application.Id)", required: true}\n'
FIND = (
    'find: {path: "?externalId={payload.externalId}", id: "items[0].id", update: {path: "/{id}"}}\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


def test_the_shipped_applications_map_loads_with_its_when() -> None:
    field_map = load_application_map(REPO / "mappings" / "example_applications.yaml")

    assert field_map.when is not None and field_map.steps[0].find is not None


def test_an_offers_map_refuses_a_top_level_when(tmp_path: Path) -> None:
    path = write(tmp_path, "when: offer.X\n" + FIELDS)

    with pytest.raises(ConfigError) as caught:
        load_field_map(path)

    assert f"{path}:1:1: unknown key 'when'" in caught.value.problems[0]


def test_an_applications_map_needs_find(tmp_path: Path) -> None:
    path = write(tmp_path, FIELDS)

    with pytest.raises(ConfigError) as caught:
        load_application_map(path)

    assert caught.value.problems == [
        f"{path}: an applications map needs find: (path, id, update), so that a changed "
        "application updates the target's record instead of creating a second one"
    ]


def test_a_when_that_does_not_parse_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, FIND + 'when: "application.["\n' + FIELDS)

    with pytest.raises(ConfigError) as caught:
        load_application_map(path)

    assert any(p.startswith(f"{path}:2:") and "'when'" in p for p in caught.value.problems)
