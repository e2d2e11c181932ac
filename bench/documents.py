"""One large offer document through the worker: memory and throughput against the simulators.

    python bench/documents.py               # a 50 MB contract (about 20 s)
    python bench/documents.py --mb 100

The simulators (PageUp, its storage listener, BambooHR) run in a process of their own, serving
one offer whose signed contract is a PDF of the given size generated as it streams. Measured in
the same run, against the same simulators:

- the two links bare: a plain httpx download of a fresh link (discarding the bytes), and a
  plain httpx multipart upload of the same size from a file; best of three each;
- the worker, in a fresh process: ``hirebridge sync --once`` of that offer (the employee, the
  contract, the offer letter): its wall time, and its peak RSS above its RSS just before the run.

A document moves store-and-forward (downloaded and checked in full, then uploaded), so the
best a move can do is size / (size/download + size/upload): the "store-and-forward bound".
Printed: each link's throughput, the worker's, its ratio to the slower link and to that bound,
and the RSS growth. Exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"rss_growth_mb": 10.0, "ratio": 0.8}
MB = 1_000_000


def serve(size: int) -> None:
    """The simulators with one offer whose contract is ``size`` bytes (until stdin closes)."""
    sys.path.insert(0, str(REPO))
    from worker.simulators import hris, pageup, storage
    from worker.simulators.sample import make_offers
    from worker.simulators.server import BackgroundServer

    sim_pageup = pageup.PageUpState()
    (offer,) = make_offers(1)
    offer.offer["Documents"][0]["FileSizeKB"] = size // 1024
    sim_pageup.load([offer])
    contract = str(offer.offer["Documents"][0]["PUReferenceID"])
    sim_pageup.storage.documents[contract] = storage.SimDocument(contract, large_bytes=size)
    sim_pageup.storage.expiry_seconds = 600
    sim_hris = hris.HrisState(flavour="bamboohr", max_upload_bytes=2 * size)
    with (
        BackgroundServer(pageup.build_app(sim_pageup)) as p,
        BackgroundServer(hris.build_app(sim_hris)) as h,
        BackgroundServer(storage.build_app(sim_pageup.storage)) as s,
    ):
        sim_pageup.storage.url = s.url
        print(json.dumps({"pageup": p.url, "hris": h.url, "contract": contract}), flush=True)
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
    """In a fresh process: one sync; print wall time, RSS before and peak RSS (kB)."""
    sys.path.insert(0, str(REPO))
    from worker.observability import configure_logging
    from worker.runtime import offer_worker
    from worker.settings import Settings

    configure_logging("warning", "json")
    settings = Settings(**json.loads(Path(config).read_text()))

    async def run() -> dict[str, Any]:
        async with offer_worker(settings) as worker:
            before = _status("VmRSS")
            started = time.perf_counter()
            (report,) = await worker.run_once()
            wall = time.perf_counter() - started
        return {"ok": report.ok, "wall": wall, "rss_before_kb": before, "peak_kb": _status("VmHWM")}

    print(json.dumps(asyncio.run(run())))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def bare_links(data: dict[str, Any], contract: str, size: int) -> tuple[float, float]:
    """Bytes/s of a bare download of a fresh link and of a bare multipart upload (best of 3)."""
    import httpx

    from worker.settings import Settings
    from worker.sources.pageup import PageUpClient

    settings = Settings(**data)
    target = settings.targets["hris"]
    down, up = 0.0, 0.0
    with tempfile.TemporaryFile() as file:
        async with httpx.AsyncClient(timeout=120) as client:
            pageup = PageUpClient(settings.sources["pageup"], client)
            for _ in range(3):
                url = await pageup.document_url(contract)
                started = time.perf_counter()
                async with client.stream("GET", url, follow_redirects=True) as response:
                    async for chunk in response.aiter_bytes(256 * 1024):
                        if not file.tell() >= size:
                            file.write(chunk)
                down = max(down, size / (time.perf_counter() - started))
            file.flush()
            employee = f"{target.url}/EMP-000001/files"
            auth = (target.auth.username or "", "x")
            for number in range(3):
                file.seek(0)
                form = {"category": "18", "fileName": f"bench-{number}.pdf", "share": "no"}
                started = time.perf_counter()
                reply = await client.post(employee, data=form, auth=auth,
                                          files={"file": (f"bench-{number}.pdf", file,
                                                          "application/pdf")})  # fmt: skip
                assert reply.status_code == 201, reply.status_code
                up = max(up, size / (time.perf_counter() - started))
    return down, up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="document size in MB (default 50)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.worker:
        worker_run(args.worker)
        return 0
    size = args.mb * MB
    sims = subprocess.Popen([sys.executable, __file__, "--serve", str(size)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert sims.stdout is not None
        urls = json.loads(sims.stdout.readline())
        with tempfile.TemporaryDirectory() as folder:
            data = settings_data(urls, folder, size)
            config = Path(folder) / "settings.json"
            config.write_text(json.dumps(data))
            command = [sys.executable, __file__, "--worker", str(config)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            run = json.loads(out.stdout.strip().splitlines()[-1])
            down, up = asyncio.run(bare_links(data, urls["contract"], size))
    finally:
        sims.stdin.close() if sims.stdin else None
        sims.wait(timeout=30)
    report(size, run, down, up)
    return 0


def report(size: int, run: dict[str, Any], down: float, up: float) -> None:
    moved = size / run["wall"]
    slower = min(down, up)
    bound = size / (size / down + size / up)
    growth = (run["peak_kb"] - run["rss_before_kb"]) / 1024
    rows = [
        ("document", f"{size / MB:.0f} MB", ""),
        ("bare download (best of 3)", f"{down / MB:.0f} MB/s", ""),
        ("bare upload (best of 3)", f"{up / MB:.0f} MB/s", ""),
        ("store-and-forward bound", f"{bound / MB:.0f} MB/s", "size / (size/down + size/up)"),
        ("worker: sync of the offer", f"{moved / MB:.0f} MB/s ({run['wall']:.2f} s)",
         "employee, contract, offer letter; run ok" if run["ok"] else "RUN FAILED"),
        ("  ratio to the slower link", f"{moved / slower:.2f}", f">= {TARGETS['ratio']}"),
        ("  ratio to the bound", f"{moved / bound:.2f}", ""),
        ("worker RSS growth", f"{growth:.1f} MB (peak {run['peak_kb'] / 1024:.0f} MB)",
         f"< {TARGETS['rss_growth_mb']:.0f} MB"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'figure':<28}  target")
    for name, figure, target in rows:
        print(f"{name:<{width}}  {figure:<28}  {target}")


if __name__ == "__main__":
    sys.exit(main())
