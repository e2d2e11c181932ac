"""``demo --dir``: a demo deletes only a folder a demo made."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.demo_folder import MARK, fresh_demo_folder
from worker.errors import ConfigError


def test_a_folder_of_someone_elses_files_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "config.yaml").write_text("mine too")

    with pytest.raises(ConfigError) as refused:
        fresh_demo_folder(folder)

    assert refused.value.problems == [
        f"--dir {folder}: not empty, and not made by a demo: refusing to delete it; "
        "name a new or empty folder"
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "thesis.tex"]


def test_a_demos_own_folder_is_made_fresh_and_a_new_or_empty_one_is_marked(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new" / "demo"
    fresh_demo_folder(new)
    assert [p.name for p in new.iterdir()] == [MARK]

    (new / "hirebridge.sqlite").write_text("state")
    (new / "anything a demo left").write_text("x")  # the mark says it is a demo's
    fresh_demo_folder(new)
    assert [p.name for p in new.iterdir()] == [MARK]

    empty = tmp_path / "empty"
    empty.mkdir()
    fresh_demo_folder(empty)
    assert [p.name for p in empty.iterdir()] == [MARK]


def test_a_folder_left_by_an_earlier_demo_without_the_mark_is_still_taken(
    tmp_path: Path,
) -> None:
    old = tmp_path / ".demo"
    (old / "jobs").mkdir(parents=True)
    for name in ("config.yaml", "hirebridge.log", "hirebridge.sqlite", "hirebridge.sqlite-wal"):
        (old / name).write_text("x")

    fresh_demo_folder(old)

    assert [p.name for p in old.iterdir()] == [MARK]


def test_a_file_or_a_link_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    for path in (file, link):
        with pytest.raises(ConfigError, match="not a folder"):
            fresh_demo_folder(path)
    assert file.read_text() == "x" and link.is_symlink()
