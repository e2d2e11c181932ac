"""``hirebridge check`` names an unreachable remote by host, port and cause."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import Sims


def test_check_says_which_host_and_port_refused_and_why(sims: Sims, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    data = sims.settings_data(f"sqlite:///{tmp_path / 's.sqlite'}")
    data["hris"]["url"] = f"http://127.0.0.1:{port}/api/employees"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))

    check = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(config), "check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert check.returncode == 1, check.stdout + check.stderr
    assert re.search(r"^ok\s+source pageup\s", check.stdout, re.MULTILINE), check.stdout
    expected = f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert re.search(
        rf"^FAIL\s+target hris\s+{re.escape(expected)}$", check.stdout, re.MULTILINE
    ), check.stdout


def test_check_reads_each_applications_map_and_names_its_problem(
    sims: Sims, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('fields:\n  externalId: {expr: "to_string(application.Id)"}\n')  # no find:
    data = sims.settings_data(f"sqlite:///{tmp_path / 's.sqlite'}")
    data["pageup"]["applications"] = {"enabled": True, "job_ids": ["3001"], "targets": ["hris"]}
    data["hris"]["applications_mapping"] = str(bad)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))

    check = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(config), "check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert check.returncode == 1, check.stdout + check.stderr
    assert re.search(r"^ok\s+map hris\s", check.stdout, re.MULTILINE), check.stdout
    assert re.search(
        rf"^FAIL\s+applications map hris\s+{re.escape(str(bad))}: an applications map needs "
        r"find:", check.stdout, re.MULTILINE,
    ), check.stdout  # fmt: skip
