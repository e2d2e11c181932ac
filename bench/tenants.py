"""Scale-out: many PageUp tenants synced by several worker processes on one PostgreSQL.

Set-up (defaults are the issue's: 200 tenants, 20 offers each, 3 workers, a 60 s schedule):
- the simulators in another process: one PageUp serving every tenant on one port, one HRIS;
- the tenants as a folder of source files (``sources_dir``) and one route ``* -> hris``;
- ``hirebridge run`` x N on a fresh PostgreSQL database;
- half of each tenant's offers in its queue at the start, the other half entering at seeded
  random times during the first period (so the lag measures scheduling, not only start-up).

It prints each tenant's lag from an offer entering the queue to its mark (p50, p99, max,
taken over tenants), offers/s, database connections used (the most seen), peak RSS per
process and duplicates. ``--kill`` kills one worker with SIGKILL half a period in, and reports
how long its tenants took to be picked up by the others. ``--tenants 10,200`` runs twice and
compares the memory of a worker.

    python bench/tenants.py [--tenants 200] [--offers 20] [--workers 3] [--period 60] [--kill]

Needs PostgreSQL: ``--database-url`` or $HIREBRIDGE_TEST_DATABASE_URL (``make bench`` starts one
with scripts/with-postgres).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SEED = 20261125


@dataclass
class Measured:
    tenants: int
    offers: int
    lags: list[float] = field(default_factory=list)  # per tenant: its worst lag
    p50: float = 0.0
    p99: float = 0.0
    worst: float = 0.0
    synced_within: float = 0.0  # when the last offer that entered at the start was marked
    offers_per_second: float = 0.0
    connections: int = 0
    rss_mb: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    unmarked: int = 0
    killed_tenants_picked_up: float | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", default="200", help="count, or counts to compare: 10,200")
    parser.add_argument("--offers", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--period", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--kill", action="store_true", help="kill -9 one worker mid-way")
    parser.add_argument("--logs", type=Path, help="keep each worker's log (info) in this folder")
    parser.add_argument("--database-url", default=os.environ.get("HIREBRIDGE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        parser.error("needs PostgreSQL: --database-url or $HIREBRIDGE_TEST_DATABASE_URL")
    results = [
        measure(int(count), args.offers, args.workers, args.period, args.latency_ms,
                args.database_url, kill=args.kill, logs=args.logs)
        for count in args.tenants.split(",")
    ]  # fmt: skip
    report(results, args.period, args.workers)
    return 0


def measure(
    tenants: int, offers: int, workers: int, period: float, latency_ms: float, url: str,
    *, kill: bool, logs: Path | None = None,
) -> Measured:  # fmt: skip
    database = fresh_database(url)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        sims = subprocess.Popen(
            [sys.executable, "-m", "worker", "simulate", "--tenants", str(tenants), "--offers",
             "0", "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert sims.stdout is not None
        urls = json.loads(sims.stdout.readline())
        try:
            config = write_config(folder, urls, database, tenants, period, logs is not None)
            return drive(config, urls["pageup"], database, tenants, offers, workers, period,
                         kill=kill, logs=logs)  # fmt: skip
        finally:
            sims.send_signal(signal.SIGTERM)
            sims.wait(timeout=30)


def fresh_database(url: str) -> str:
    base = url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"hb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{base.rsplit('/', 1)[0]}/{name}"


def write_config(folder: Path, urls: dict[str, str], database: str, tenants: int,
                 period: float, verbose: bool = False) -> Path:  # fmt: skip
    from worker.demo import simulated_tenant

    sources = folder / "tenants"
    sources.mkdir()
    retry = {"attempts": 4, "backoff_initial_seconds": 0.05, "timeout_seconds": 10}
    for n in range(tenants):
        state = simulated_tenant(n)
        (sources / f"t{n:04d}.yaml").write_text(yaml.safe_dump({
            "tenant_id": state.tenant, "client_id": state.client_id,
            "client_secret": state.client_secret, "retry": retry,
            "api_base_url": f"{urls['pageup']}/v3/{state.tenant}/recruitment/hire/",
            "token_url": f"{urls['pageup']}/connect/token",
        }))  # fmt: skip
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({
        "sources_dir": str(sources),
        "targets": {"hris": {
            "url": f"{urls['hris']}/api/employees", "retry": retry,
            "auth": {"type": "api_key", "api_key": "hris-sim-key"},
            "mapping": str(REPO / "mappings" / "example_hris.yaml"),
        }},
        "routes": [{"source": "*", "target": "hris"}],
        "database": {"url": database},
        "sync": {"concurrency": 16},
        "service": {"port": 0, "schedule": {"interval_seconds": period}},
        "sentry": {"cron_monitor_slug": None},
        "logging": {"level": "info" if verbose else "warning", "format": "json"},
    }))  # fmt: skip
    return config


def drive(config: Path, pageup: str, database: str, tenants: int, offers: int, workers: int,
          period: float, *, kill: bool, logs: Path | None = None) -> Measured:  # fmt: skip
    from worker.demo import simulated_tenant

    rng = random.Random(SEED)
    ids = [simulated_tenant(n).tenant for n in range(tenants)]
    first_half = offers // 2
    with httpx.Client(base_url=pageup, timeout=30) as sim:
        for n, tenant in enumerate(ids):
            load(sim, tenant, first_half, 1_000_000 + 1000 * n)
        later = sorted((rng.uniform(0, period), tenant, n) for n, tenant in enumerate(ids))
        started = time.time()
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
        procs = [subprocess.Popen([sys.executable, "-m", "worker", "--config", str(config), "run"],
                                  stdout=subprocess.DEVNULL,
                                  stderr=(logs / f"worker{n}.log").open("w") if logs else
                                  subprocess.DEVNULL)
                 for n in range(workers)]  # fmt: skip
        sampler = Sampler(procs, database)
        sampler.start()
        killed_at = None
        pending = list(later)
        deadline = started + 4 * period
        try:
            while time.time() < deadline:
                now = time.time() - started
                while pending and pending[0][0] <= now:
                    _, tenant, n = pending.pop(0)
                    load(sim, tenant, offers - first_half, 1_000_000 + 1000 * n + first_half)
                if kill and killed_at is None and now >= period / 2:
                    procs[0].send_signal(signal.SIGKILL)
                    killed_at = time.time()
                marks = sim.get("/_sim/marks").json()
                if not pending and all(m[1] for rows in marks.values() for m in rows):
                    break
                time.sleep(0.5)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=60)
            sampler.stop()
        marks = sim.get("/_sim/marks").json()
    return figures(marks, started, tenants, offers, sampler, killed_at)


def load(sim: httpx.Client, tenant: str, count: int, first_id: int) -> None:
    if count:
        sim.post("/_sim/load", params={"tenant": tenant, "count": count, "first_id": first_id})


class Sampler(threading.Thread):
    """Peak RSS of each worker process and peak database connections, every half second."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], database: str) -> None:
        super().__init__(daemon=True)
        self._procs = procs
        self._engine = create_engine(database)
        self._name = database.rsplit("/", 1)[1]
        self._done = threading.Event()
        self.rss_mb: dict[int, float] = {}
        self.connections = 0

    def run(self) -> None:
        while not self._done.wait(0.5):
            for index, proc in enumerate(self._procs):
                self.rss_mb[index] = max(self.rss_mb.get(index, 0.0), rss_of(proc.pid))
            with self._engine.connect() as conn:
                used = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                    {"d": self._name},
                ).scalar_one()
            self.connections = max(self.connections, int(used) - 1)  # not the sampler's own

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)
        self._engine.dispose()


def rss_of(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def figures(marks: dict[str, list[list[Any]]], started: float, tenants: int, offers: int,
            sampler: Sampler, killed_at: float | None) -> Measured:  # fmt: skip
    measured = Measured(tenants, offers, rss_mb=sampler.rss_mb, connections=sampler.connections)
    all_lags, last_mark, first_marks = [], started, []
    for rows in marks.values():
        lags = [marked - loaded for loaded, marked, _count in rows if marked]
        measured.unmarked += sum(1 for _l, marked, _c in rows if not marked)
        measured.duplicates += sum(1 for _l, _m, count in rows if count > 1)
        if lags:
            measured.lags.append(max(lags))
            all_lags.extend(lags)
        last_mark = max([last_mark, *(m for _l, m, _c in rows if m)])
        first_marks += [m for loaded, m, _c in rows if m and loaded <= started + 1]
    ordered = sorted(all_lags) or [0.0]
    measured.p50 = statistics.median(ordered)
    measured.p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    measured.worst = ordered[-1]
    measured.synced_within = max(first_marks, default=started) - started
    measured.offers_per_second = len(all_lags) / max(0.001, last_mark - started)
    if killed_at is not None:
        late = [m for rows in marks.values() for _l, m, _c in rows if m and m > killed_at]
        measured.killed_tenants_picked_up = (max(late) - killed_at) if late else 0.0
    return measured


def report(results: list[Measured], period: float, workers: int) -> None:
    print("| tenants | offers | lag p50 | lag p99 | lag max | first half synced | offers/s |"
          " DB connections | peak RSS per worker (MB) | duplicates | unmarked |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in results:
        rss = ", ".join(f"{mb:.0f}" for _, mb in sorted(m.rss_mb.items()))
        print(f"| {m.tenants} | {m.tenants * m.offers} | {m.p50:.1f} s | {m.p99:.1f} s |"
              f" {m.worst:.1f} s | {m.synced_within:.1f} s | {m.offers_per_second:.1f} |"
              f" {m.connections} | {rss} | {m.duplicates} | {m.unmarked} |")  # fmt: skip
    last = results[-1]
    print(f"\nschedule {period:g} s, {workers} workers; targets: every tenant synced within one "
          f"period, p99 lag < {1.5 * period:g} s, no duplicate, RSS growth < 50 MB")  # fmt: skip
    print(
        f"p99 lag {last.p99:.1f} s = {last.p99 / period:.2f} periods; "
        f"first half synced within {last.synced_within / period:.2f} periods"
    )
    if len(results) > 1:
        growth = max(last.rss_mb.values()) - max(results[0].rss_mb.values())
        print(f"worker RSS growth {results[0].tenants} -> {last.tenants} tenants: {growth:+.1f} MB")
    if last.killed_tenants_picked_up is not None:
        print(
            f"after kill -9 of one worker: its tenants' offers all marked within "
            f"{last.killed_tenants_picked_up:.1f} s (worker timeout 30 s)"
        )


if __name__ == "__main__":
    sys.exit(main())
