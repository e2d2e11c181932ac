"""Scale-out: many PageUp tenants synced by several worker processes on one PostgreSQL.

Set-up (defaults are the issue's: 200 tenants, 20 offers each, 3 workers, a 60 s schedule):
- the simulators in another process: one PageUp serving every tenant on one port, one HRIS;
- the tenants as a folder of source files (``sources_dir``) and one route ``* -> hris``;
- ``hirebridge run`` x N on a fresh PostgreSQL database;
- half of each tenant's offers in its queue at the start, the other half entering at seeded
  random times during the first period (so the lag measures scheduling, not only start-up).

It prints the lag from an offer entering a tenant's queue to its mark: each tenant's p50, p99
and max (the worst tenants listed, every tenant with ``--per-tenant``), summarised over the
tenants and over all offers; how many tenants were synced within one period (every offer
marked within a period of the tenant's first scheduled run after it entered the queue: each
run drained the queue before the next was due) and, apart, how many had every offer marked
within a period of entering (stricter than the schedule allows: an offer that enters just
after a listing waits up to a period for the next run); offers/s; the database connections used (the
most seen); the peak RSS of each worker process; duplicates. ``--kill`` kills one worker with
SIGKILL half a period into the last size measured, and reports what it held at that moment (the
runs of the sources it led, the offers it had claimed) and how long until the others took those
runs over, finished them and processed those offers, against the worker timeout in the
settings. ``--tenants 10,200`` runs once per size and compares the memory of the workers.

    scripts/with-postgres .venv/bin/python bench/tenants.py \
        [--tenants 200] [--offers 20] [--workers 3] [--period 60] [--kill] [--per-tenant]

Needs PostgreSQL: ``--database-url`` or $HIREBRIDGE_TEST_DATABASE_URL, which
``scripts/with-postgres`` sets (it starts a throw-away server). ``make bench`` does not run it.
"""

from __future__ import annotations

import argparse
import json
import math
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
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SEED = 20261125
BENCH_APP = "hirebridge-bench"


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
    rss_mb: dict[int, float] = field(default_factory=dict)  # peak after start-up
    startup_mb: dict[int, float] = field(default_factory=dict)  # peak while starting
    duplicates: int = 0
    unmarked: int = 0
    per_tenant: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # p50/99/max
    # per tenant: its worst (mark - the scheduled run after the offer entered); <= a period
    # means each run of the tenant drained its queue before the next was due
    behind_schedule: dict[str, float] = field(default_factory=dict)
    kill: Killed | None = None


@dataclass
class Killed:
    """What the killed worker held when it died, and when the others had finished it."""

    index: int
    at: float
    worker_timeout: float
    runs: dict[str, str]  # source -> the run it led
    offers: set[tuple[str, str]]  # (source, offer) it had claimed
    taken_over: float | None = None  # seconds after the kill: every run led by another
    runs_finished: float | None = None  # ... and finished
    offers_finished: float | None = None  # every offer it held processed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", default="200", help="count, or counts to compare: 10,200")
    parser.add_argument("--offers", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--period", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--kill", action="store_true", help="kill -9 one worker mid-way (in the last size measured)"
    )
    parser.add_argument("--per-tenant", action="store_true", help="print every tenant's lags")
    parser.add_argument("--logs", type=Path, help="keep each worker's log (info) in this folder")
    parser.add_argument("--database-url", default=os.environ.get("HIREBRIDGE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        parser.error("needs PostgreSQL: --database-url or $HIREBRIDGE_TEST_DATABASE_URL")
    counts = [int(count) for count in args.tenants.split(",")]
    results = [
        measure(count, args.offers, args.workers, args.period, args.latency_ms,
                args.database_url, kill=args.kill and n == len(counts) - 1, logs=args.logs)
        for n, count in enumerate(counts)
    ]  # fmt: skip
    report(results, args.period, args.workers, every_tenant=args.per_tenant)
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
        killed: KillWatch | None = None
        pending = list(later)
        deadline = started + 4 * period
        try:
            while time.time() < deadline:
                now = time.time() - started
                while pending and pending[0][0] <= now:
                    _, tenant, n = pending.pop(0)
                    load(sim, tenant, offers - first_half, 1_000_000 + 1000 * n + first_half)
                if kill and killed is None and now >= period / 2 and leads_runs(sampler, 0):
                    procs[0].send_signal(signal.SIGKILL)
                    procs[0].wait()
                    killed = KillWatch(database, 0, procs[0].pid, worker_timeout(config))
                    # Time for the others to notice (the worker timeout) and finish its work.
                    deadline = max(deadline, killed.killed.at + 2 * killed.killed.worker_timeout
                                   + period)  # fmt: skip
                marks = sim.get("/_sim/marks").json()
                if killed is not None:
                    killed.poll(marked_offers(marks))
                if (not pending and all(m[1] for rows in marks.values() for m in rows)
                        and (killed is None or killed.done)):  # fmt: skip
                    break
                time.sleep(0.5)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=60)
            sampler.stop()
            if killed is not None:
                killed.close()
        marks = sim.get("/_sim/marks").json()
        first_runs = first_run_of_each_tenant(database)
    measured = figures(marks, started, tenants, offers, sampler, period, first_runs)
    measured.kill = killed.killed if killed is not None else None
    return measured


def first_run_of_each_tenant(database: str) -> dict[str, float]:
    """Each tenant's first run start (its schedule's anchor: runs are due every period after
    it), by tenant id (source ``t0038`` is tenant ``1038``)."""
    engine = bench_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT source, min(started_at) FROM runs GROUP BY source"))
            return {str(1000 + int(str(source)[1:])): first.timestamp() for source, first in rows}
    finally:
        engine.dispose()


def leads_runs(sampler: Sampler, index: int) -> bool:
    """The worker leads a run now with offers claimed (a kill then leaves work behind)."""
    pid = sampler.procs[index].pid
    query = text("SELECT count(*) FROM source_state s JOIN workers w ON w.worker_id = "
                 "s.lease_owner WHERE w.pid = :pid AND EXISTS (SELECT 1 FROM offers o "
                 "WHERE o.lease_owner = w.worker_id)")  # fmt: skip
    try:
        with sampler.engine.connect() as conn:
            return int(conn.execute(query, {"pid": pid}).scalar_one()) > 0
    except ProgrammingError:  # the workers have not created the schema yet
        return False


def bench_engine(database: str) -> Engine:
    """The bench's own connections, named so that they are not counted as the workers'."""
    return create_engine(database, connect_args={"application_name": BENCH_APP})


def worker_timeout(config: Path) -> float:
    from worker.config_file import load_settings_for_command

    return load_settings_for_command(config).sync.worker_timeout_seconds


class KillWatch:
    """What a killed worker held (read from the database the moment it died), and when the
    other workers had taken its runs over, finished them, and processed its offers."""

    def __init__(self, database: str, index: int, pid: int, timeout: float) -> None:
        self._engine = bench_engine(database)
        at = time.time()
        with self._engine.connect() as conn:
            owner = conn.execute(text("SELECT worker_id FROM workers WHERE pid = :pid"),
                                 {"pid": pid}).scalar_one()  # fmt: skip
            runs = conn.execute(text("SELECT source, run_id FROM source_state "
                                     "WHERE lease_owner = :o"), {"o": owner}).all()  # fmt: skip
            offers = conn.execute(text("SELECT source, offer_id FROM offers "
                                       "WHERE lease_owner = :o"), {"o": owner}).all()  # fmt: skip
        self.killed = Killed(index, at, timeout, {str(s): str(r) for s, r in runs},
                             {(str(s), str(o)) for s, o in offers})  # fmt: skip

    @property
    def done(self) -> bool:
        return self.killed.runs_finished is not None and self.killed.offers_finished is not None

    def poll(self, marked: set[str]) -> None:
        """``marked``: the offers PageUp has marked processed (the truth: the ledger never
        hears of a mark the dead worker sent just before it died)."""
        k, elapsed = self.killed, time.time() - self.killed.at
        with self._engine.connect() as conn:
            rows = conn.execute(text("SELECT source, run_id, lease_owner, last_finished_at "
                                     "FROM source_state")).all()  # fmt: skip
        states = {str(row[0]): row for row in rows if str(row[0]) in k.runs}
        moved = all(row[1] != k.runs[name] for name, row in states.items())
        ended = all(row[3] is not None and row[3].timestamp() > k.at for row in states.values())
        if k.taken_over is None and moved:
            k.taken_over = elapsed
        if k.runs_finished is None and moved and ended:
            k.runs_finished = elapsed
        if k.offers_finished is None and {offer for _source, offer in k.offers} <= marked:
            k.offers_finished = elapsed

    def close(self) -> None:
        self._engine.dispose()


def marked_offers(marks: dict[str, list[list[Any]]]) -> set[str]:
    """The ids of the offers PageUp has marked processed (offer ids are unique across the
    bench's tenants)."""
    return {str(offer) for rows in marks.values() for _l, marked, _c, offer in rows if marked}


def load(sim: httpx.Client, tenant: str, count: int, first_id: int) -> None:
    if count:
        sim.post("/_sim/load", params={"tenant": tenant, "count": count, "first_id": first_id})


STARTUP_SECONDS = 5.0  # after a worker registers: the rest of its start-up


class Sampler(threading.Thread):
    """Peak RSS of each worker process and peak database connections, every half second.

    A worker's RSS is kept apart while it starts (until STARTUP_SECONDS after it registered in
    the database): start-up holds about 60 MB more for a second or so whatever the tenant
    count, so a peak that includes it says whether a half-second sample caught that second,
    not how memory grows with the tenants."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], database: str) -> None:
        super().__init__(daemon=True)
        self.procs = procs
        self.engine = bench_engine(database)
        self._name = database.rsplit("/", 1)[1]
        self._done = threading.Event()
        self.rss_mb: dict[int, float] = {}  # after start-up
        self.startup_mb: dict[int, float] = {}
        self._registered: dict[int, float] = {}  # pid -> when it was first seen registered
        self.connections = 0

    def run(self) -> None:
        while not self._done.wait(0.5):
            now = time.time()
            if len(self._registered) < len(self.procs):
                self._see_registrations(now)
            for index, proc in enumerate(self.procs):
                since = self._registered.get(proc.pid)
                peaks = self.rss_mb if since and now - since > STARTUP_SECONDS else self.startup_mb
                peaks[index] = max(peaks.get(index, 0.0), rss_of(proc.pid))
            with self.engine.connect() as conn:
                used = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                         "AND application_name <> :me"),
                    {"d": self._name, "me": BENCH_APP},
                ).scalar_one()  # fmt: skip
            self.connections = max(self.connections, int(used))

    def _see_registrations(self, now: float) -> None:
        try:
            with self.engine.connect() as conn:
                pids = conn.execute(text("SELECT pid FROM workers")).scalars().all()
        except ProgrammingError:  # the workers have not created the schema yet
            return
        for pid in pids:
            self._registered.setdefault(int(pid), now)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)
        self.engine.dispose()


def rss_of(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def figures(marks: dict[str, list[list[Any]]], started: float, tenants: int, offers: int,
            sampler: Sampler, period: float, first_runs: dict[str, float]) -> Measured:  # fmt: skip
    measured = Measured(
        tenants,
        offers,
        rss_mb=sampler.rss_mb,
        startup_mb=sampler.startup_mb,
        connections=sampler.connections,
    )
    all_lags, last_mark, first_marks = [], started, []
    for tenant, rows in marks.items():
        lags = sorted(marked - loaded for loaded, marked, _count, _id in rows if marked)
        anchor = first_runs.get(tenant)
        if anchor is not None:
            measured.behind_schedule[tenant] = max(
                [marked - due_after(loaded, anchor, period) for loaded, marked, _c, _id in rows
                 if marked], default=0.0)  # fmt: skip
        measured.unmarked += sum(1 for _l, marked, _c, _id in rows if not marked)
        measured.duplicates += sum(1 for _l, _m, count, _id in rows if count > 1)
        if lags:
            measured.per_tenant[tenant] = (statistics.median(lags), _p99(lags), lags[-1])
            measured.lags.append(lags[-1])
            all_lags.extend(lags)
        last_mark = max([last_mark, *(m for _l, m, _c, _id in rows if m)])
        first_marks += [m for loaded, m, _c, _id in rows if m and loaded <= started + 1]
    ordered = sorted(all_lags) or [0.0]
    measured.p50 = statistics.median(ordered)
    measured.p99 = _p99(ordered)
    measured.worst = ordered[-1]
    measured.synced_within = max(first_marks, default=started) - started
    measured.offers_per_second = len(all_lags) / max(0.001, last_mark - started)
    return measured


def due_after(moment: float, anchor: float, period: float) -> float:
    """The tenant's first scheduled run at or after ``moment`` (runs are due every period
    from ``anchor``)."""
    return anchor + max(0, math.ceil((moment - anchor) / period)) * period


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _spread(values: list[float]) -> str:
    """Over the tenants: median, p99, worst."""
    ordered = sorted(values) or [0.0]
    return f"{statistics.median(ordered):.1f} / {_p99(ordered):.1f} / {ordered[-1]:.1f} s"


def report(results: list[Measured], period: float, workers: int, *,
           every_tenant: bool = False) -> None:  # fmt: skip
    print("| tenants | offers | lag p50 | lag p99 | lag max | tenants synced within a period |"
          " offers marked within a period of entering | first half synced | offers/s |"
          " DB connections | peak RSS per worker after start-up (MB) | peak while starting |"
          " duplicates | unmarked |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m in results:
        rss = ", ".join(f"{mb:.0f}" for _, mb in sorted(m.rss_mb.items()))
        startup = ", ".join(f"{mb:.0f}" for _, mb in sorted(m.startup_mb.items()))
        synced = sum(1 for late in m.behind_schedule.values() if late <= period)
        within = sum(1 for _p50, _p99, worst in m.per_tenant.values() if worst <= period)
        print(f"| {m.tenants} | {m.tenants * m.offers} | {m.p50:.1f} s | {m.p99:.1f} s |"
              f" {m.worst:.1f} s | {synced}/{m.tenants} | {within}/{m.tenants} tenants |"
              f" {m.synced_within:.1f} s |"
              f" {m.offers_per_second:.1f} | {m.connections} | {rss} | {startup} | {m.duplicates} |"
              f" {m.unmarked} |")  # fmt: skip
    for m in results:
        lags = list(m.per_tenant.values())
        print(f"\n{m.tenants} tenants, each tenant's lag (median / p99 / worst over the tenants):"
              f" p50 {_spread([t[0] for t in lags])}, p99 {_spread([t[1] for t in lags])},"
              f" max {_spread([t[2] for t in lags])}")  # fmt: skip
        shown = sorted(m.per_tenant.items(), key=lambda item: -item[1][2])
        print("| tenant | lag p50 | lag p99 | lag max |\n|---|---|---|---|")
        for tenant, (p50, p99, worst) in shown if every_tenant else shown[:5]:
            print(f"| {tenant} | {p50:.1f} s | {p99:.1f} s | {worst:.1f} s |")
    last = results[-1]
    late = max(last.behind_schedule.values(), default=0.0)
    print(f"\nsynced within a period: each offer marked within a period of the first run due "
          f"after it entered (worst {late:.1f} s); an offer entering just after a listing waits "
          f"up to a period for the next run by design, so 'within a period of entering' is shown "
          f"apart")  # fmt: skip
    print(f"\nschedule {period:g} s, {workers} workers; targets: every tenant synced within one "
          f"period, p99 lag < {1.5 * period:g} s, no duplicate, RSS growth < 50 MB")  # fmt: skip
    print(f"p99 lag {last.p99:.1f} s = {last.p99 / period:.2f} periods; "
          f"first half synced within {last.synced_within / period:.2f} periods")  # fmt: skip
    if len(results) > 1:
        first = results[0]
        alive = [mb for n, mb in last.rss_mb.items() if last.kill is None or n != last.kill.index]
        before = list(first.rss_mb.values())
        growth = max(alive) - max(before)
        smallest = min(alive) - min(before)
        median = statistics.median(alive) - statistics.median(before)
        print(f"worker RSS growth {first.tenants} -> {last.tenants} tenants: {growth:+.1f} MB"
              " (peak of the largest worker; a killed worker left out); smallest worker "
              f"{smallest:+.1f} MB, median {median:+.1f} MB")  # fmt: skip
        print(
            "  (peaks after start-up; while starting, a worker holds about 60 MB more for a "
            "second or so at any tenant count: the 'peak while starting' column)"
        )
    if last.kill is not None:
        report_kill(last.kill)


def report_kill(k: Killed) -> None:
    def seconds(value: float | None) -> str:
        return "not within the bench" if value is None else f"{value:.1f} s"

    print(
        f"\nkill -9 of worker {k.index}: it led {len(k.runs)} runs (sources) and held "
        f"{len(k.offers)} claimed offers; worker timeout {k.worker_timeout:g} s (settings)"
    )
    print(f"  its runs all led by another worker after {seconds(k.taken_over)}, all finished "
          f"after {seconds(k.runs_finished)}; its offers all processed after "
          f"{seconds(k.offers_finished)}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
