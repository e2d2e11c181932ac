"""``hirebridge demo`` and ``hirebridge simulate``: the product against its simulators."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

import worker
from worker.observability import configure_logging
from worker.runtime import offer_sync
from worker.settings import Settings
from worker.simulators import hris, pageup
from worker.simulators.sample import make_offers
from worker.simulators.server import BackgroundServer

DEMO_MISSING_TFN = 4  # the fifth sample offer has no tax file number answer


def default_mapping() -> Path:
    bundled = Path(worker.__file__).resolve().parent.parent / "mappings" / "example_hris.yaml"
    return bundled if bundled.exists() else Path("mappings/example_hris.yaml")


def simulator_settings(
    pageup_url: str,
    hris_url: str,
    database_url: str,
    *,
    mapping: Path | None = None,
    concurrency: int = 8,
    **overrides: Any,
) -> dict[str, Any]:
    """Settings (as a plain dict) that point hirebridge at the simulators."""
    sim_pageup, sim_hris = pageup.PageUpState(), hris.HrisState()
    data: dict[str, Any] = {
        "pageup": {
            "tenant_id": sim_pageup.tenant,
            "client_id": sim_pageup.client_id,
            "client_secret": sim_pageup.client_secret,
            "api_base_url": f"{pageup_url}/v3/{sim_pageup.tenant}/recruitment/hire/",
            "token_url": f"{pageup_url}/connect/token",
            "retry": {"attempts": 4, "backoff_initial_seconds": 0.05, "timeout_seconds": 5},
        },
        "hris": {
            "url": f"{hris_url}{sim_hris.path}",
            "auth": {"type": "api_key", "header_name": "X-API-Key", "api_key": sim_hris.api_key},
            "mapping": str(mapping or default_mapping()),
            "retry": {"attempts": 4, "backoff_initial_seconds": 0.05, "timeout_seconds": 5},
        },
        "database": {"url": database_url},
        "sync": {"concurrency": concurrency},
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return data


def run_demo(*, offers: int, folder: Path) -> int:
    """Start both simulators, sync twice, show what happened. Exit 0 when all went as expected."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    log_path = folder / "hirebridge.log"
    samples = make_offers(offers, missing_tfn=frozenset({DEMO_MISSING_TFN}))
    sim_pageup = pageup.PageUpState(faults=pageup.PageUpFaults(error_rate=0.05, seed=3))
    sim_pageup.load(samples)
    sim_hris = hris.HrisState()
    with ExitStack() as stack, log_path.open("w") as log_file:
        configure_logging("info", "json", stream=log_file)
        pageup_server = stack.enter_context(BackgroundServer(pageup.build_app(sim_pageup)))
        hris_server = stack.enter_context(BackgroundServer(hris.build_app(sim_hris)))
        database_url = f"sqlite:///{(folder / 'hirebridge.sqlite').resolve()}"
        data = simulator_settings(pageup_server.url, hris_server.url, database_url)
        (folder / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        settings = Settings(**data)
        print(f"PageUp simulator {pageup_server.url}  ({offers} accepted offers in the queue)")
        print(f"HRIS simulator   {hris_server.url}")
        print(f"state            {database_url}\n")
        reports = asyncio.run(_two_runs(settings))
    return _summarise(reports, sim_pageup, sim_hris, samples_count=offers, folder=folder)


async def _two_runs(settings: Settings) -> list[Any]:
    async with offer_sync(settings) as parts:
        first = await parts.sync.run()
        second = await parts.sync.run()
        unfinished = parts.ledger.unfinished()
    return [first, second, unfinished]


def _summarise(
    reports: list[Any],
    sim_pageup: pageup.PageUpState,
    sim_hris: hris.HrisState,
    *,
    samples_count: int,
    folder: Path,
) -> int:
    first, second, unfinished = reports
    for label, report in (("first run ", first), ("second run", second)):
        print(
            f"{label}: listed {report.listed:>3}, processed {report.succeeded:>3}, "
            f"failed {report.failed:>3} (parked {report.parked}), "
            f"left alone {report.not_due}  ({report.outcome})"
        )
    duplicates = sum(1 for n in sim_hris.external_ids().values() if n > 1)
    marked = sum(1 for n in sim_pageup.processed.values() if n)
    print(f"\nHRIS records created:         {len(sim_hris.records)}")
    print(f"HRIS duplicate employees:     {duplicates}")
    print(
        f"PageUp offers marked processed: {marked} (remaining in queue: {len(sim_pageup.queue())})"
    )
    print(f"PageUp 503s injected (retried):   {sim_pageup.injected['503']}")
    if unfinished:
        print("\nnot processed, with the reason an admin sees in `hirebridge parked`:")
        for offer in unfinished:
            state = "parked" if offer.parked_at else offer.status
            print(f"  offer {offer.offer_id}: {state} at {offer.stage}: {offer.last_error}")
    command = Path(sys.executable).with_name("hirebridge")
    print(f"\nstructured log: {folder / 'hirebridge.log'}")
    print(f"inspect state:  {command} --config {folder / 'config.yaml'} status")
    expected = samples_count - 1
    ok = marked == expected and duplicates == 0 and len(sim_hris.records) == expected
    print("\ndemo " + ("OK" if ok else "FAILED: unexpected outcome"))
    return 0 if ok else 1


def serve_simulators(*, offers: int, latency: float, seed: int) -> int:
    """Serve both simulators until SIGTERM/SIGINT; print their URLs as one JSON line."""
    sim_pageup = pageup.PageUpState(faults=pageup.PageUpFaults(latency_seconds=latency, seed=seed))
    sim_pageup.load(make_offers(offers, seed=seed))
    sim_hris = hris.HrisState(faults=hris.HrisFaults(latency_seconds=latency, seed=seed))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with (
        BackgroundServer(pageup.build_app(sim_pageup)) as p,
        BackgroundServer(hris.build_app(sim_hris)) as h,
    ):
        print(json.dumps({"pageup": p.url, "hris": h.url}), flush=True)
        stop.wait()
    print(json.dumps({"stopped": True}), file=sys.stderr)
    return 0
