"""Offer sync throughput, CPU and memory against the simulators (in another process).

    python bench/offer_sync.py                        # 1000 offers at 50 ms (about 25 s)
    python bench/offer_sync.py --runs 1000:5,20000:5  # the memory comparison (about 5 min)

Each run is N offers with a fixed simulator latency per call, the queue listed in pages of
100, 4 at a time (``paging.read_ahead``); the worker runs in a fresh process per run (so
peak RSS is that run's). Printed per run:
offers/s, the ratio to the bound set by the critical path (concurrency / (3 x latency):
parallel fetches, then post, then mark), PageUp calls per offer, worker CPU ms per offer, and
peak RSS. The simulators' CPU is not counted in the worker's; "sim CPU" is how busy their one
process was during the run (near 100%: the simulators, not the worker, set the pace).
"bare client" is the ratio to the bound that a client doing only the critical path's calls
reaches, measured just before the run: the ceiling this machine allows at its current load.
"httpx floor" is the CPU that the same number of bare httpx GETs costs (through the transport
the worker uses), measured back to back in the same process just before the run: no per-offer
work of ours can go below it. "bare CPU/offer" is the bare client's own CPU per offer: its
five calls made as the worker makes them (16 lanes, the run's latency), so also paying the
idle wake-ups and cold caches between calls that back-to-back GETs do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PAGE_SIZE = 100  # the queue is listed in pages of this many offers
READ_AHEAD = 4  # pages asked at once (paging.read_ahead): the simulator answers empty past the end
BARE_OFFERS = 320  # offers of the bare client's run (see bare_pipeline_rate)
TARGETS = {"ratio": 0.9, "calls": 4.05, "cpu_ms": 3.0, "floor_x": 1.5, "rss_growth_mb": 50.0}


def measure_in_this_process(
    offers: int,
    concurrency: int,
    pageup: str,
    hris: str,
    database: str | None = None,
    group_commit_ms: float | None = None,
    group_commit_rows: int | None = None,
) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from worker.demo import simulator_settings
    from worker.observability import configure_logging
    from worker.runtime import offer_worker
    from worker.settings import Settings

    configure_logging("warning", "json")
    bare_ms = asyncio.run(bare_request_cpu_ms(f"{pageup}/_sim/stats"))
    api = simulator_settings(pageup, hris, "sqlite://")["pageup"]["api_base_url"]
    bare_rate, bare_offer_ms = asyncio.run(bare_pipeline_rate(api, BARE_OFFERS, concurrency))
    with tempfile.TemporaryDirectory() as folder:
        data = simulator_settings(pageup, hris, database or f"sqlite:///{folder}/bench.sqlite",
                                  concurrency=concurrency)  # fmt: skip
        data["pageup"]["paging"] = {"mode": "page_number", "page_size": PAGE_SIZE,
                                    "read_ahead": READ_AHEAD}  # fmt: skip
        if group_commit_ms is not None:
            data["database"]["group_commit_ms"] = group_commit_ms
        if group_commit_rows is not None:
            data["database"]["group_commit_rows"] = group_commit_rows
        data["pageup"]["retry"]["timeout_seconds"] = 30
        data["hris"]["retry"]["timeout_seconds"] = 30
        settings = Settings(**data)

        async def run() -> tuple[Any, float, float]:
            async with offer_worker(settings) as worker:
                cpu0, wall0 = time.process_time(), time.perf_counter()
                (report,) = await worker.run_once()
                return report, time.perf_counter() - wall0, time.process_time() - cpu0

        report, wall, cpu = asyncio.run(run())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"succeeded": report.succeeded, "failed": report.failed, "wall": wall, "cpu": cpu,
            "rss_mb": rss_mb, "bare_ms": bare_ms, "bare_rate": bare_rate,
            "bare_offer_ms": bare_offer_ms}  # fmt: skip


async def bare_request_cpu_ms(url: str, requests: int = 300) -> float:
    """CPU of one plain httpx GET on loopback, through the transport the worker uses: the
    floor under any per-call work of ours."""
    from worker.remote.lanes import CONNECTIONS_PER_LANE, new_client

    async with new_client(CONNECTIONS_PER_LANE) as client:
        for _ in range(20):
            await client.get(url)
        start = time.process_time()
        for _ in range(requests):
            await client.get(url)
        return 1000 * (time.process_time() - start) / requests


async def bare_pipeline_rate(api: str, offers: int, lanes: int) -> tuple[float, float]:
    """Offers/s of a client that does only an offer's critical path (three calls at once, then
    one, then one) with bare httpx on ``lanes`` lanes, nothing else: what this machine, as
    loaded now, lets any worker reach; and its CPU ms per offer, the floor of the same five
    calls made the way the worker makes them (the same lanes, latency and idle wake-ups; a
    process that sleeps between calls runs its next one from cold caches, which costs 2 to 3
    times what back-to-back calls do). Its calls are answered 401 after the latency."""
    from worker.remote.lanes import CONNECTIONS_PER_LANE, new_client

    async with new_client(CONNECTIONS_PER_LANE * lanes) as client:
        left = iter(range(offers))

        async def lane() -> None:
            for n in left:
                url = f"{api}offers/{900101 + n}"
                await asyncio.gather(*(client.get(url) for _ in range(3)))
                await client.get(url)
                await client.get(url)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(lane() for _ in range(lanes)))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return offers / wall, 1000 * cpu / offers


def start_simulators(
    offers: int, latency_ms: float, page_size: int
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "simulate", "--offers", str(offers),
         "--latency-ms", str(latency_ms), "--page-size", str(page_size)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    urls = json.loads(process.stdout.readline())
    return process, urls


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), to see whether the simulators'
    one process (its servers share a GIL) was the bottleneck of a run."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sim_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_sim/stats", timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
        return result


def one_run(offers: int, latency_ms: float, concurrency: int, extra: list[str]) -> dict[str, Any]:
    process, urls = start_simulators(offers, latency_ms, PAGE_SIZE)
    try:
        sim_cpu0 = process_cpu_seconds(process.pid)
        worker = subprocess.run(
            [sys.executable, __file__, "--measure", str(offers), "--concurrency", str(concurrency),
             "--pageup", urls["pageup"], "--hris", urls["hris"], *extra],
            capture_output=True, text=True, check=True, timeout=900,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(worker.stdout.strip().splitlines()[-1])
        sim_cpu = process_cpu_seconds(process.pid) - sim_cpu0
        pageup, hris = sim_stats(urls["pageup"]), sim_stats(urls["hris"])
    finally:
        process.terminate()
        process.wait(timeout=30)
    bound = concurrency / (3 * latency_ms / 1000)
    rate = result["succeeded"] / result["wall"]
    result.update(
        offers=offers, latency_ms=latency_ms, rate=rate, bound=bound, ratio=rate / bound,
        calls=(sum(pageup["calls"].values()) - 5 * BARE_OFFERS) / offers,
        cpu_ms=1000 * result["cpu"] / offers, bare_ratio=result["bare_rate"] / bound,
        floor_ms=(sum(pageup["calls"].values()) - 5 * BARE_OFFERS + hris["calls"]["post"])
        / offers
        * result["bare_ms"],
        hris_records=hris["records"], duplicates=hris["duplicates"],
        sim_busy=sim_cpu / result["wall"],
        marked_twice=pageup["marked_twice"],
    )  # fmt: skip
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="1000:50", help="N:latency_ms,... runs")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="a fresh, empty database (default: a SQLite file)")
    parser.add_argument("--group-commit-ms", type=float, help="database.group_commit_ms")
    parser.add_argument(
        "--group-commit-rows",
        type=int,
        help="database.group_commit_rows (1: every write commits alone)",
    )
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pageup", help=argparse.SUPPRESS)
    parser.add_argument("--hris", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_in_this_process(args.measure, args.concurrency, args.pageup,
                                                 args.hris, args.database_url,
                                                 args.group_commit_ms,
                                                 args.group_commit_rows)))  # fmt: skip
        return 0
    runs = [tuple(float(x) for x in run.split(":")) for run in args.runs.split(",")]
    print(f"offer sync, concurrency {args.concurrency}, {os.cpu_count()} cores; "
          f"simulators in another process; load average {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    header = (f"{'offers':>7} {'lat ms':>6} {'ok':>6} {'offers/s':>9} {'bound':>7} {'ratio':>6} "
              f"{'PU calls/offer':>14} {'CPU ms/offer':>12} {'httpx floor':>11} "
              f"{'peak RSS MB':>11} {'dup':>4} {'sim CPU':>7} {'bare client':>11} "
              f"{'bare CPU/offer':>14}")  # fmt: skip
    print(header)
    print("-" * len(header))
    results = []
    extra = [f"--{name}={value}" for name, value in
             (("database-url", args.database_url), ("group-commit-ms", args.group_commit_ms),
              ("group-commit-rows", args.group_commit_rows))
             if value is not None]  # fmt: skip
    for offers, latency in runs:
        r = one_run(int(offers), latency, args.concurrency, extra)
        results.append(r)
        print(f"{r['offers']:>7} {r['latency_ms']:>6g} {r['succeeded']:>6} {r['rate']:>9.1f} "
              f"{r['bound']:>7.1f} {r['ratio']:>6.2f} {r['calls']:>14.3f} {r['cpu_ms']:>12.2f} "
              f"{r['floor_ms']:>11.2f} "
              f"{r['rss_mb']:>11.1f} {r['duplicates'] + r['marked_twice']:>4} "
              f"{r['sim_busy']:>7.0%} {r['bare_ratio']:>11.2f} "
              f"{r['bare_offer_ms']:>14.2f}")  # fmt: skip
    first, last = results[0], results[-1]
    print("\ntargets (issue #13; the ratio target is 0.8 at 20 ms)")
    print(f"  ratio to bound at {first['offers']}: {first['ratio']:.2f} "
          f"(target >= {TARGETS['ratio']})")  # fmt: skip
    print(f"  PageUp calls per offer:   {first['calls']:.3f} (target <= {TARGETS['calls']})")
    print(f"  CPU ms per offer:         {first['cpu_ms']:.2f} (target < {TARGETS['cpu_ms']}); "
          f"{first['cpu_ms'] / first['floor_ms']:.2f}x the CPU of its bare httpx requests "
          f"({first['floor_ms']:.2f} ms, measured in this run; target <= "
          f"{TARGETS['floor_x']}x)")  # fmt: skip
    print(f"                            {first['cpu_ms'] / first['bare_offer_ms']:.2f}x the CPU "
          f"per offer of the bare client's five calls made as the worker makes them "
          f"({first['bare_offer_ms']:.2f} ms, same run)")  # fmt: skip
    if len(results) > 1:
        growth = last["rss_mb"] - first["rss_mb"]
        print(f"  RSS growth {first['offers']} -> {last['offers']}: {growth:.1f} MB "
              f"(target <= {TARGETS['rss_growth_mb']})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
