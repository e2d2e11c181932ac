"""The folder a demo keeps its state in (``demo --dir``): made fresh for each demo run, and
never a folder the demo did not make.

A demo deletes its folder before it starts, so that each run begins from nothing. A folder is
deleted only when it is empty, carries the mark a demo leaves, or holds nothing but what a demo
writes (a folder left by a demo of an earlier version, before the mark); anything else is
refused, so that ``--dir ~`` or ``--dir .`` cannot delete someone's files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from worker.errors import ConfigError

MARK = ".hirebridge-demo"
# What the demos write: a folder holding nothing else was made by one.
DEMO_FILES = frozenset({MARK, "config.yaml", "hirebridge.log", "jobs"}) | {
    f"hirebridge.sqlite{suffix}" for suffix in ("", "-wal", "-shm", "-journal")
}


def fresh_demo_folder(folder: Path) -> None:
    """Make ``folder`` empty and marked as a demo's; ConfigError if it is not a demo's."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError([f"--dir {folder}: not a folder; name a new or empty folder"])
    if folder.exists():
        entries = {entry.name for entry in folder.iterdir()}
        if entries and MARK not in entries and not entries <= DEMO_FILES:
            raise ConfigError([
                f"--dir {folder}: not empty, and not made by a demo: refusing to delete it; "
                "name a new or empty folder"
            ])  # fmt: skip
        if entries:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).write_text("made by `hirebridge demo`: the next demo run deletes it\n")
