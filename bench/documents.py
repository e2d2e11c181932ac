"""One large offer document through the worker: memory and throughput against the simulators.

    python bench/documents.py               # a 50 MB contract, 3 runs (about 30 s)
    python bench/documents.py --mb 100 --runs 1

Each run starts the simulators (PageUp, its storage listener, BambooHR) in a process of their
own, serving one offer whose signed contract is a PDF of the given size generated as it
streams. Measured in the same run, against the same simulators (the bare measures first, so
that the worker too meets them warm):

- the worker, in a fresh process: ``hirebridge sync --once`` of that offer (the employee and
  the contract, its only document): its wall time, the contract's move from asking PageUp for
  its link to the target's answer (``hirebridge_document_seconds``), and its peak RSS above
  its RSS just before the run;
- the two links bare, doing the work the worker must do with the bytes: a plain httpx download
  of a fresh link into a temporary file, hashed with SHA-256 (every pass writes and hashes),
  and a plain httpx multipart upload of the same size from that file; best of three each;
- a bare relay, the ceiling of a streamed move on this machine: a plain client in this process
  (the worker's transport, ``worker.remote.lanes.new_client``) asks PageUp for a fresh link and
  streams the download straight into the multipart upload, with no type check, no hashing, no
  temporary file and no ledger; timed, like the worker's move, from asking for the link to the
  target's answer; best of three.

Store-and-forward (download in full, then upload) cannot beat
size / (size/download + size/upload), the "store-and-forward bound"; a streamed move can
approach the slower link. Printed per measure: min, median and max over the runs of each
link's time and throughput, the worker's document move and whole sync, their ratios to the
slower link and to that bound (each against the same run's links), the bare relay's, the move's
ratio to the relay (what the worker's own work costs), and the RSS growth. Exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"rss_growth_mb": 10.0, "ratio": 0.8}
MB = 1_000_000


def serve(size: int, role: str) -> None:
    """Until stdin closes, one side's simulators: ``pageup`` (the API and its storage, with one
    offer whose contract is ``size`` bytes) or ``hris`` (BambooHR). Each side has a process of
    its own, as they are other hosts: in one process they would share one GIL, and a streamed
    move could not overlap the storage's sending with the HRIS's receiving."""
    sys.path.insert(0, str(REPO))
    from worker.simulators import hris, pageup, storage
    from worker.simulators.sample import make_offers
    from worker.simulators.server import BackgroundServer

    if role == "hris":
        sim_hris = hris.HrisState(flavour="bamboohr", max_upload_bytes=2 * size)
        with BackgroundServer(hris.build_app(sim_hris)) as h:
            print(json.dumps({"hris": h.url}), flush=True)
            sys.stdin.read()
        return
    sim_pageup = pageup.PageUpState()
    (offer,) = make_offers(1)
    offer.offer["Documents"] = offer.offer["Documents"][:1]  # the contract alone
    offer.offer["Documents"][0]["FileSizeKB"] = size // 1024
    sim_pageup.load([offer])
    contract = str(offer.offer["Documents"][0]["PUReferenceID"])
    sim_pageup.storage.documents[contract] = storage.SimDocument(contract, large_bytes=size)
    sim_pageup.storage.expiry_seconds = 600
    with (
        BackgroundServer(pageup.build_app(sim_pageup)) as p,
        BackgroundServer(storage.build_app(sim_pageup.storage)) as s,
    ):
        sim_pageup.storage.url = s.url
        print(json.dumps({"pageup": p.url, "contract": contract}), flush=True)
        sys.stdin.read()


def settings_data(urls: dict[str, str], folder: str, size: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from worker.demo import simulator_settings

    data = simulator_settings(urls["pageup"], urls["hris"], f"sqlite:///{folder}/bench.sqlite",
                              target="bamboohr", concurrency=1)  # fmt: skip
    data["documents"].update(max_bytes=2 * size)
    for section in ("pageup", "hris"):
        data[section]["retry"]["timeout_seconds"] = 60
    return data


def worker_run(config: str) -> None:
    """In a fresh process: one sync; print wall time, document seconds, RSS before and peak."""
    sys.path.insert(0, str(REPO))
    from prometheus_client import REGISTRY

    from worker.observability import configure_logging
    from worker.runtime import offer_worker
    from worker.settings import Settings

    configure_logging("warning", "json")
    settings = Settings(**json.loads(Path(config).read_text()))

    async def run() -> dict[str, Any]:
        async with offer_worker(settings) as worker:
            before = _status("VmRSS")
            started, cpu = time.perf_counter(), time.process_time()
            (report,) = await worker.run_once()
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
        moving = REGISTRY.get_sample_value("hirebridge_document_seconds_sum", {"target": "hris"})
        return {"ok": report.ok, "wall": wall, "documents_s": moving or 0.0, "cpu": cpu,
                "rss_before_kb": before, "peak_kb": _status("VmHWM")}  # fmt: skip

    print(json.dumps(asyncio.run(run())))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user and system) these processes used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def bench_employee(client: Any, employees: str, auth: tuple[str, str]) -> str:
    """The files URL of an employee created for the bare uploads (not the worker's)."""
    reply = await client.post(employees, json={"firstName": "Bench", "lastName": "Links"},
                              auth=auth)  # fmt: skip
    assert reply.status_code == 201, reply.status_code
    return f"{employees}/{reply.headers['location'].rsplit('/', 1)[-1]}/files"


async def bare_links(
    data: dict[str, Any], contract: str, size: int, sims: list[int]
) -> dict[str, float]:
    """Seconds of a bare download (into a file, hashed) of a fresh link and of a bare multipart
    upload from that file, best of 3 each, and the CPU time this process and the simulators
    used in that best pass."""
    import httpx

    from worker.settings import Settings
    from worker.sources.pageup import PageUpClient

    settings = Settings(**data)
    target = settings.targets["hris"]
    down, up = float("inf"), float("inf")
    down_cpu = up_cpu = 0.0
    processes = [os.getpid(), *sims]
    # A fresh file each pass, as the worker's: on ext4, a file truncated to 0 is written out to
    # disk when it is closed, which would slow the worker's run after this one.
    with contextlib.ExitStack() as files:
        async with httpx.AsyncClient(timeout=120) as client:
            pageup = PageUpClient(settings.sources["pageup"], client)
            for _ in range(3):
                url = await pageup.document_url(contract)
                file = files.enter_context(tempfile.TemporaryFile())
                digest = hashlib.sha256()
                cpu, started = cpu_seconds(processes), time.perf_counter()
                async with client.stream("GET", url, follow_redirects=True) as response:
                    async for chunk in response.aiter_bytes():
                        digest.update(chunk)
                        file.write(chunk)
                file.flush()
                digest.hexdigest()
                took, cpu = time.perf_counter() - started, cpu_seconds(processes) - cpu
                down, down_cpu = (took, cpu) if took < down else (down, down_cpu)
                assert file.tell() == size, (file.tell(), size)
            auth = (target.auth.username or "", "x")
            employee = await bench_employee(client, target.url, auth)
            for number in range(3):
                file.seek(0)
                form = {"category": "18", "fileName": f"bench-{number}.pdf", "share": "no"}
                cpu, started = cpu_seconds(processes), time.perf_counter()
                reply = await client.post(employee, data=form, auth=auth,
                                          files={"file": (f"bench-{number}.pdf", file,
                                                          "application/pdf")})  # fmt: skip
                assert reply.status_code == 201, reply.status_code
                took, cpu = time.perf_counter() - started, cpu_seconds(processes) - cpu
                up, up_cpu = (took, cpu) if took < up else (up, up_cpu)
    return {"down_s": down, "up_s": up, "down_cpu": down_cpu, "up_cpu": up_cpu}


async def bare_relay(
    data: dict[str, Any], contract: str, size: int, sims: list[int]
) -> dict[str, float]:
    """Seconds of a bare streamed relay (link asked, download piped into a multipart upload),
    best of 3, and the CPU time this process and the simulators used in that best pass."""
    from worker.remote.lanes import new_client
    from worker.settings import Settings
    from worker.sinks.uploads import multipart_body
    from worker.sources.pageup import PageUpClient

    settings = Settings(**data)
    target = settings.targets["hris"]
    auth = (target.auth.username or "", "x")
    best, best_cpu = float("inf"), 0.0
    processes = [os.getpid(), *sims]
    client = new_client(8)
    try:
        pageup = PageUpClient(settings.sources["pageup"], client)
        await pageup.document_url(contract)  # its token fetched, as the worker's is by then
        employee = await bench_employee(client, target.url, auth)
        for number in range(3):
            name = f"relay-{number}.pdf"
            form = {"category": "18", "fileName": name, "share": "no"}
            cpu, started = cpu_seconds(processes), time.perf_counter()
            url = await pageup.document_url(contract)
            async with client.stream("GET", url, follow_redirects=True, timeout=120) as response:
                length = int(response.headers["content-length"])
                body, total, kind = multipart_body(form, "file", name, "application/pdf",
                                                   response.aiter_raw, length)  # fmt: skip
                reply = await client.post(employee, content=body(), auth=auth, timeout=120,
                                          headers={"Content-Type": kind,
                                                   "Content-Length": str(total)})  # fmt: skip
            assert reply.status_code == 201, reply.status_code
            took, cpu = time.perf_counter() - started, cpu_seconds(processes) - cpu
            best, best_cpu = (took, cpu) if took < best else (best, best_cpu)
    finally:
        await client.aclose()
    return {"relay_s": best, "relay_cpu": best_cpu}


def one_run(size: int) -> dict[str, Any]:
    """Simulators, the bare links and relay, then the worker's sync: one run's figures."""
    sims = [subprocess.Popen([sys.executable, __file__, "--serve", str(size), "--role", role],
                             text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for role in ("pageup", "hris")]  # fmt: skip
    try:
        urls: dict[str, str] = {}
        for sim in sims:
            assert sim.stdout is not None
            urls.update(json.loads(sim.stdout.readline()))
        with tempfile.TemporaryDirectory() as folder:
            data = settings_data(urls, folder, size)
            config = Path(folder) / "settings.json"
            config.write_text(json.dumps(data))
            command = [sys.executable, __file__, "--worker", str(config)]
            pids = [sim.pid for sim in sims]
            # The bare measures first (best of three each), so that the worker too meets warm
            # simulators: the storage's first large body took ~20 ms more to start.
            links = asyncio.run(bare_links(data, urls["contract"], size, pids))
            links.update(asyncio.run(bare_relay(data, urls["contract"], size, pids)))
            before = cpu_seconds(pids)
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            run: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            run["sims_cpu"] = cpu_seconds(pids) - before
            run.update(links)
    finally:
        for sim in sims:
            sim.stdin.close() if sim.stdin else None
            sim.wait(timeout=30)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="document size in MB (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--role", default="pageup", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.role)
        return 0
    if args.worker:
        worker_run(args.worker)
        return 0
    size = args.mb * MB
    runs = [one_run(size) for _ in range(args.runs)]
    report(size, runs)
    return 0


def figures(size: int, run: dict[str, Any]) -> dict[str, float]:
    down, up = size / run["down_s"], size / run["up_s"]
    slower = min(down, up)
    bound = size / (run["down_s"] + run["up_s"])
    moved, synced = size / run["documents_s"], size / run["wall"]
    relayed = size / run["relay_s"]
    return {
        "down_s": run["down_s"], "down": down / MB, "up_s": run["up_s"], "up": up / MB,
        "bound": bound / MB, "moved_s": run["documents_s"], "moved": moved / MB,
        "moved_slower": moved / slower, "moved_bound": moved / bound,
        "relay_s": run["relay_s"], "relay": relayed / MB, "relay_slower": relayed / slower,
        "relay_cpu": run["relay_cpu"], "relay_cores": run["relay_cpu"] / run["relay_s"],
        "moved_relay": moved / relayed,
        "sync_s": run["wall"], "sync_slower": synced / slower,
        "sync_cpu": run["cpu"] + run["sims_cpu"], "sync_cores": (run["cpu"] + run["sims_cpu"])
        / run["wall"], "down_cpu": run["down_cpu"], "down_cores": run["down_cpu"] / run["down_s"],
        "up_cpu": run["up_cpu"], "up_cores": run["up_cpu"] / run["up_s"],
        "growth": (run["peak_kb"] - run["rss_before_kb"]) / 1024, "peak": run["peak_kb"] / 1024,
    }  # fmt: skip


ROWS = [
    ("bare download (s, into a file, hashed)", "down_s", "{:.3f}", ""),
    ("bare download (MB/s)", "down", "{:.0f}", ""),
    ("bare upload (s, multipart from the file)", "up_s", "{:.3f}", ""),
    ("bare upload (MB/s)", "up", "{:.0f}", ""),
    ("store-and-forward bound (MB/s)", "bound", "{:.0f}", "size / (down s + up s)"),
    ("worker: the document's move (s)", "moved_s", "{:.3f}", "link asked, downloaded, sent"),
    ("worker: document throughput (MB/s)", "moved", "{:.0f}", ""),
    ("  ratio to the slower link", "moved_slower", "{:.2f}", f">= {TARGETS['ratio']}"),
    ("  ratio to the store-and-forward bound", "moved_bound", "{:.2f}", ""),
    ("bare relay (s, download piped into the upload)", "relay_s", "{:.3f}", "link asked, sent"),
    ("bare relay (MB/s)", "relay", "{:.0f}", ""),
    ("  ratio to the slower link", "relay_slower", "{:.2f}", "the ceiling of a streamed move"),
    ("worker's move, ratio to the bare relay", "moved_relay", "{:.2f}", ""),
    ("worker: whole sync of the offer (s)", "sync_s", "{:.3f}", "employee, document, mark"),
    ("  size / sync time, ratio to the slower link", "sync_slower", "{:.2f}", ""),
    ("CPU s of every process: bare download", "down_cpu", "{:.2f}", "client and storage"),
    ("  cores busy on average", "down_cores", "{:.2f}", ""),
    ("CPU s of every process: bare upload", "up_cpu", "{:.2f}", "client and HRIS"),
    ("  cores busy on average", "up_cores", "{:.2f}", ""),
    ("CPU s of every process: bare relay", "relay_cpu", "{:.2f}", "client and simulators"),
    ("  cores busy on average", "relay_cores", "{:.2f}", ""),
    ("CPU s of every process: worker's sync", "sync_cpu", "{:.2f}", "worker and simulators"),
    ("  cores busy on average", "sync_cores", "{:.2f}", f"of {os.cpu_count()}"),
    ("worker RSS growth (MB)", "growth", "{:.1f}", f"< {TARGETS['rss_growth_mb']:.0f}"),
    ("worker peak RSS (MB)", "peak", "{:.0f}", ""),
]


def report(size: int, runs: list[dict[str, Any]]) -> None:
    failed = sum(not run["ok"] for run in runs)
    each = [figures(size, run) for run in runs]
    print(f"a {size / MB:.0f} MB document, {len(runs)} run(s), load {os.getloadavg()[0]:.2f}"
          + (f", {failed} RUN(S) FAILED" if failed else ", every run ok"))  # fmt: skip
    width = max(len(r[0]) for r in ROWS)
    print(f"{'measure':<{width}}  {'min':>7}  {'median':>7}  {'max':>7}  target")
    for name, key, shape, target in ROWS:
        values = sorted(f[key] for f in each)
        shown = [shape.format(v) for v in (values[0], statistics.median(values), values[-1])]
        print(f"{name:<{width}}  {shown[0]:>7}  {shown[1]:>7}  {shown[2]:>7}  {target}")


if __name__ == "__main__":
    sys.exit(main())
