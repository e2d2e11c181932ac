"""Every command that reads settings finds them by the same rule (worker.settings.
load_settings_for_command): a missing config file is named, never reported as missing keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.cli import main

READS_SETTINGS = [
    ["sync", "--once"], ["run"], ["check"], ["reload"], ["status"], ["parked"],
    ["retry", "--all-parked"], ["skip", "900101", "--reason", "r"],
    ["preview", "--offer", "900101"], ["preview", "--input", "doc.json"], ["validate-mappings"],
    ["pop-config"], ["inbox"], ["inbox-retry", "--all-parked"],
    ["jobs", "sync", "--once"], ["jobs", "status"], ["jobs", "link", "a", "b"],
    ["jobs", "retry", "--all-parked"],
]  # fmt: skip


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("HIREBRIDGE_") and key != "HIREBRIDGE_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", READS_SETTINGS, ids=" ".join)
def test_every_command_names_a_missing_config_file(
    bare: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", "missing.yaml", *command]) == 2
    named = capsys.readouterr().err
    assert main(command) == 2
    default = capsys.readouterr().err
    assert f"missing.yaml (in {bare}): config file not found (named by --config)" in named
    assert "no config file: config.yaml" in default and "config.example.yaml" in default
    assert "Field required" not in named + default
