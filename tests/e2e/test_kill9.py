"""kill -9 the worker at random points while it syncs against faulty simulators.

Each trial kills the worker process from inside a simulator, at a random step: right after the
HRIS stored the k-th employee (before the worker hears back) or while PageUp marks the k-th
offer. Then it restarts the worker until a run succeeds, and checks that every offer is in the
HRIS exactly once, marked processed exactly once, and never marked before it was posted.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Sims

pytestmark = pytest.mark.e2e
TRIALS = 20
OFFERS = 8
SEED = 20261123


def faulty(sims: Sims, trial: int) -> None:
    sims.hris.faults.error_rate = 0.2
    sims.hris.faults.slow_rate = 0.05
    sims.hris.faults.slow_seconds = 1.0  # past the worker's 0.5 s timeout
    sims.pageup.faults.error_rate = 0.1
    sims.pageup.faults.rate_limit_every = 17
    sims.pageup.faults.retry_after = "0.05"
    sims.pageup.faults.token_lifetime_seconds = 3
    sims.hris.rng = random.Random(trial)
    sims.pageup.rng = random.Random(trial + 1000)


def worker(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "--config", str(config), "sync", "--once"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def test_kill_9_at_random_points_never_duplicates_or_loses_a_hire(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    restarts, killed = [], 0
    for trial in range(TRIALS):
        sims = Sims(OFFERS, frozenset()).start()
        try:
            runs, was_killed = run_trial(sims, trial, rng, tmp_path / f"trial{trial}")
            restarts.append(runs)
            killed += was_killed
        finally:
            sims.stop()
    assert len(restarts) == TRIALS and max(restarts) < 15
    assert killed >= TRIALS * 3 // 4, f"only {killed} of {TRIALS} workers were killed"


def run_trial(sims: Sims, trial: int, rng: random.Random, folder: Path) -> tuple[int, bool]:
    faulty(sims, trial)
    folder.mkdir()
    retry = {"attempts": 4, "backoff_initial_seconds": 0.01, "timeout_seconds": 0.5}
    data = sims.settings_data(
        f"sqlite:///{folder / 'state.sqlite'}",
        sync={"concurrency": 4, "retry_backoff_initial_seconds": 0, "max_attempts": 100},
        pageup={"retry": retry},
        hris={"retry": retry},
    )
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    kill_at, kill_on = rng.randint(1, OFFERS), rng.choice(["record", "mark"])
    seen = Counter[str]()
    victim: list[subprocess.Popen[str]] = []
    marked_before_posted: list[str] = []

    def step(kind: str, offer_id: str) -> None:
        seen[kind] += 1
        if kind == "mark" and not sims.hris.by_external_id[offer_id]:
            marked_before_posted.append(offer_id)
        if kind == kill_on and seen[kind] == kill_at and victim:
            os.kill(victim[0].pid, signal.SIGKILL)

    sims.hris.on_record = lambda offer_id: step("record", offer_id)
    sims.pageup.on_mark = lambda offer_id: step("mark", offer_id)

    victim.append(worker(config))
    was_killed = victim[0].wait(timeout=120) == -signal.SIGKILL
    victim.clear()
    runs = 0
    while runs < 15:
        runs += 1
        if worker(config).wait(timeout=120) == 0:
            break

    every = {str(sample.offer_id) for sample in sims.samples}
    assert set(sims.hris_counts()) == every, f"trial {trial}: a hire was lost"
    assert set(sims.hris_counts().values()) == {1}, f"trial {trial}: a hire was duplicated"
    assert {k: v for k, v in sims.pageup.processed.items() if v} == dict.fromkeys(every, 1)
    assert marked_before_posted == [], f"trial {trial}: marked before posted"
    return runs, was_killed


ROUTED_TRIALS = 10


def test_kill_9_between_targets_and_before_the_mark_never_duplicates_or_loses_a_hire(
    tmp_path: Path,
) -> None:
    """Two tenants, three targets (examples/routes.yaml): each offer goes to the HRIS and its
    country's payroll. The worker is killed right after one target stored the k-th offer (the
    other target may or may not have it yet), or while PageUp marks the k-th offer (every target
    has it). After restarts every offer is in each of its targets once, and marked once, never
    before all of them had it."""
    from tests.conftest import RoutedSims

    rng = random.Random(SEED + 1)
    killed = 0
    for trial in range(ROUTED_TRIALS):
        routed = RoutedSims().start()
        try:
            killed += routed_trial(routed, rng, tmp_path / f"routed{trial}")
        finally:
            routed.stop()
    assert killed >= ROUTED_TRIALS * 3 // 4, f"only {killed} of {ROUTED_TRIALS} were killed"


def routed_trial(routed: Any, rng: random.Random, folder: Path) -> bool:
    folder.mkdir()
    data = routed.settings_data(
        f"sqlite:///{folder / 'state.sqlite'}",
        sync={"concurrency": 4, "retry_backoff_initial_seconds": 0, "max_attempts": 100},
    )
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    kill_on, kill_at = rng.choice(["first_target", "mark"]), rng.randint(1, 10)
    seen = Counter[str]()
    victim: list[subprocess.Popen[str]] = []
    early: list[str] = []

    def targets_of(offer_id: str) -> int:
        return sum(sim.external_ids()[offer_id] for sim in routed.targets.values())

    def stored(offer_id: str) -> None:
        if targets_of(offer_id) == 1:  # the first of its two targets just stored it
            seen["first_target"] += 1
            if kill_on == "first_target" and seen["first_target"] == kill_at and victim:
                os.kill(victim[0].pid, signal.SIGKILL)

    def marking(offer_id: str) -> None:
        seen["mark"] += 1
        if targets_of(offer_id) != 2:
            early.append(offer_id)
        if kill_on == "mark" and seen["mark"] == kill_at and victim:
            os.kill(victim[0].pid, signal.SIGKILL)

    for sim in routed.targets.values():
        sim.on_record = stored
    for state in routed.tenants.values():
        state.on_mark = marking
    victim.append(worker(config))
    was_killed = victim[0].wait(timeout=120) == -signal.SIGKILL
    victim.clear()
    for _ in range(15):
        if worker(config).wait(timeout=120) == 0:
            break

    for tenant, samples in routed.samples.items():
        for sample in samples:
            offer_id = str(sample.offer_id)
            payroll = (
                "payroll_au" if routed.country(tenant, offer_id) == "Australia" else "payroll_nz"
            )
            assert routed.targets["hris"].external_ids()[offer_id] == 1, offer_id
            assert routed.targets[payroll].external_ids()[offer_id] == 1, offer_id
            assert routed.tenants[tenant].processed[offer_id] == 1, offer_id
    assert early == [], "marked before every target had it"
    return was_killed
