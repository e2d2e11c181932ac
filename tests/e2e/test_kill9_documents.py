"""kill -9 the worker while it uploads offer documents into BambooHR's employee files.

Each trial kills the worker process from inside the HRIS simulator at a random upload: as the
upload arrives (before the file is kept), or right after the file was kept (before the worker
hears back). BambooHR honours no idempotency key for files, so only the worker's record of the
upload and the employee's file list stand between a restart and a second copy. After restarts,
every document is in the employee's file exactly once and every offer is marked once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import Sims

pytestmark = pytest.mark.e2e
TRIALS = 8
OFFERS = 3
SEED = 20261126


def worker(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "--config", str(config), "sync", "--once"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def test_kill_9_during_uploads_leaves_each_document_in_the_hris_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    killed = Counter[str]()
    for trial in range(TRIALS):
        sims = Sims(OFFERS, frozenset(), "bamboohr").start()
        try:
            killed[run_trial(sims, trial, rng, tmp_path / f"trial{trial}")] += 1
        finally:
            sims.stop()
    assert killed["start"] + killed["stored"] >= TRIALS * 3 // 4, killed
    assert killed["start"] and killed["stored"], "both kill points were exercised"


def run_trial(sims: Sims, trial: int, rng: random.Random, folder: Path) -> str:
    folder.mkdir()
    sims.pageup.faults.error_rate = 0.1
    sims.pageup.rng = random.Random(trial)
    retry = {"attempts": 4, "backoff_initial_seconds": 0.01, "timeout_seconds": 2}
    data = sims.settings_data(
        f"sqlite:///{folder / 'state.sqlite'}",
        sync={"concurrency": 2, "retry_backoff_initial_seconds": 0, "max_attempts": 100},
        pageup={"retry": retry},
        hris={"retry": retry},
    )
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    kill_at, kill_on = rng.randint(1, 2 * OFFERS), rng.choice(["start", "stored"])
    seen = Counter[str]()
    victim: list[subprocess.Popen[str]] = []

    def upload(phase: str, _record_id: str) -> None:
        seen[phase] += 1
        if phase == kill_on and seen[phase] == kill_at and victim:
            os.kill(victim[0].pid, signal.SIGKILL)

    sims.hris.on_upload = upload
    victim.append(worker(config))
    was_killed = victim[0].wait(timeout=120) == -signal.SIGKILL
    victim.clear()
    for _ in range(10):
        if worker(config).wait(timeout=120) == 0:
            break

    every = {str(sample.offer_id) for sample in sims.samples}
    assert set(sims.hris_counts()) == every and set(sims.hris_counts().values()) == {1}
    for record_id, record in sims.hris.records.items():
        names = sorted(f["name"] for f in sims.hris.files.get(record_id, []))
        assert names == ["employment-contract-signed.pdf", "offer-letter.pdf"], (
            f"trial {trial} ({kill_on} #{kill_at}): offer {record['employeeNumber']}: {names}"
        )
    assert {k: v for k, v in sims.pageup.processed.items() if v} == dict.fromkeys(every, 1)
    if was_killed and kill_on == "stored":  # kept, never recorded: found in the list instead
        assert sims.hris.calls["list_files"] >= 1
    return kill_on if was_killed else "not killed"
