"""``hirebridge demo`` and ``hirebridge simulate``: the product against its simulators."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import worker
from worker.demo_folder import fresh_demo_folder
from worker.errors import MappingError
from worker.mapping.engine import apply_map
from worker.mapping.loader import FieldMap, load_field_map
from worker.mapping.uploads import choose_documents
from worker.observability import configure_logging
from worker.runtime import offer_worker
from worker.settings import Settings
from worker.simulators import hris, pageup, storage
from worker.simulators.sample import SampleOffer, make_offers
from worker.simulators.server import BackgroundServer

DEMO_MISSING_TFN = 4  # the fifth sample offer has no tax file number answer


@dataclass(frozen=True)
class DemoTarget:
    """An HRIS the demo can sync to: the simulator's flavour and the shipped map for it."""

    flavour: str
    mapping: str
    path: str  # hris.url below the simulator's base URL


TARGETS = {
    "example": DemoTarget("generic", "example_hris.yaml", "/api/employees"),
    "steps": DemoTarget("generic", "example_payroll_steps.yaml", "/api"),
    "bamboohr": DemoTarget("bamboohr", "bamboohr.yaml", hris.FLAVOURS["bamboohr"].path),
    "hibob": DemoTarget("hibob", "hibob.yaml", hris.FLAVOURS["hibob"].path),
    "xero": DemoTarget("xero", "xero_payroll_au.yaml", hris.FLAVOURS["xero"].path),
    "successfactors": DemoTarget("successfactors", "successfactors.yaml", "/odata/v2"),
    "employmenthero": DemoTarget(
        "employmenthero", "employmenthero.yaml", hris.FLAVOURS["employmenthero"].path
    ),
}


def default_mapping(name: str = "example_hris.yaml") -> Path:
    bundled = Path(worker.__file__).resolve().parent.parent / "mappings" / name
    return bundled if bundled.exists() else Path("mappings") / name


def hris_settings(target: str, hris_url: str, sim: hris.HrisState) -> dict[str, Any]:
    """The ``hris`` settings section for ``target`` served by the simulator at ``hris_url``."""
    spec = TARGETS[target]
    data: dict[str, Any] = {
        "url": f"{hris_url}{spec.path}",
        "mapping": str(default_mapping(spec.mapping)),
    }
    key = sim.api_key or ""
    if spec.flavour == "generic":
        data["auth"] = {"type": "api_key", "header_name": "X-API-Key", "api_key": key}
    elif spec.flavour == "bamboohr":
        data["auth"] = {"type": "basic", "username": key, "password": "x"}
        data.update(id_from="location", success_statuses=[201])
    elif spec.flavour == "hibob":
        data["auth"] = {"type": "basic", "username": sim.username, "password": key}
        data.update(id_path="id", success_statuses=[200])
    elif spec.flavour == "successfactors":  # Basic; the simulator also takes a bearer token
        data["auth"] = {"type": "basic", "username": sim.username, "password": key}
        data.update(success_statuses=[200])
    elif spec.flavour == "employmenthero":
        data["auth"] = {"type": "basic", "username": key, "password": "x"}
        data.update(id_path="id", success_statuses=[200])
    else:
        data["auth"] = {
            "type": "oauth2",
            "token_url": f"{hris_url}/connect/token",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "scope": "payroll.employees",
        }
        data.update(
            headers={"xero-tenant-id": sim.tenant_id},
            id_path="Employees[0].EmployeeID",
            success_statuses=[200],
        )
    return data


def simulator_settings(
    pageup_url: str,
    hris_url: str,
    database_url: str,
    *,
    mapping: Path | None = None,
    concurrency: int = 8,
    target: str = "example",
    **overrides: Any,
) -> dict[str, Any]:
    """Settings (as a plain dict) that point hirebridge at the simulators."""
    sim_pageup = pageup.PageUpState()
    sim_hris = hris.HrisState(flavour=TARGETS[target].flavour)
    hris_section = hris_settings(target, hris_url, sim_hris)
    if mapping is not None:
        hris_section["mapping"] = str(mapping)
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
            **hris_section,
            "retry": {"attempts": 4, "backoff_initial_seconds": 0.05, "timeout_seconds": 5},
        },
        "database": {"url": database_url},
        "sync": {"concurrency": concurrency},
        # The storage simulator serves its download links over plain http on loopback.
        "documents": {"allow_http": True},
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return data


def run_demo(*, offers: int, folder: Path, target: str = "example") -> int:
    """Start both simulators, sync twice, show what happened. Exit 0 when all went as expected."""
    fresh_demo_folder(folder)
    log_path = folder / "hirebridge.log"
    samples = make_offers(offers, missing_tfn=frozenset({DEMO_MISSING_TFN}))
    sim_pageup = pageup.PageUpState(faults=pageup.PageUpFaults(error_rate=0.05, seed=3))
    sim_pageup.load(samples)
    sim_hris = hris.HrisState(flavour=TARGETS[target].flavour)
    with ExitStack() as stack, log_path.open("w") as log_file:
        configure_logging("info", "json", stream=log_file)
        pageup_server = stack.enter_context(BackgroundServer(pageup.build_app(sim_pageup)))
        hris_server = stack.enter_context(BackgroundServer(hris.build_app(sim_hris)))
        storage_app = storage.build_app(sim_pageup.storage)
        sim_pageup.storage.url = stack.enter_context(BackgroundServer(storage_app)).url
        database_url = f"sqlite:///{(folder / 'hirebridge.sqlite').resolve()}"
        data = simulator_settings(pageup_server.url, hris_server.url, database_url, target=target)
        (folder / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        settings = Settings(**data)
        mapping = settings.targets["hris"].mapping
        field_map = load_field_map(mapping)
        mappable = sum(1 for sample in samples if _maps(field_map, sample))
        files = sum(_files(field_map, sample) for sample in samples if _maps(field_map, sample))
        print(f"PageUp simulator {pageup_server.url}  ({offers} accepted offers in the queue)")
        print(f"HRIS simulator   {hris_server.url}  (behaves like: {TARGETS[target].flavour})")
        print(f"field map        {mapping}")
        print(f"state            {database_url}\n")
        reports = asyncio.run(_two_runs(settings))
    return _summarise(reports, sim_pageup, sim_hris, expected=mappable, total=offers, folder=folder,
                      files=files)  # fmt: skip


def _maps(field_map: FieldMap, sample: SampleOffer) -> bool:
    """Whether the map can fill every required field of a sample offer (checked offline)."""
    document = {"offer": sample.offer, "onboarding": sample.onboarding}
    try:
        apply_map(field_map, {**document, "application": sample.application_form})
    except MappingError:
        return False
    return True


def _files(field_map: FieldMap, sample: SampleOffer) -> int:
    """How many of a sample offer's documents the map sends (none without ``documents:``)."""
    if field_map.documents is None:
        return 0
    return len(choose_documents(field_map, {"offer": sample.offer}))


async def _two_runs(settings: Settings) -> list[Any]:
    async with offer_worker(settings) as worker:
        (first,) = await worker.run_once()
        (second,) = await worker.run_once()
        unfinished = worker.ledger.unfinished()
    return [first, second, unfinished]


def _summarise(
    reports: list[Any],
    sim_pageup: pageup.PageUpState,
    sim_hris: hris.HrisState,
    *,
    expected: int,
    total: int,
    folder: Path,
    files: int = 0,
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
    children = sum(len(c) for c in sim_hris.children.values())
    if children:
        print(f"HRIS follow-up records (bank, tax, super): {children}")
    file_duplicates = _show_files(sim_hris)
    if sim_hris.entities:  # SuccessFactors: each hire is several upserted records
        counts = ", ".join(f"{name} {len(kept)}" for name, kept in sim_hris.entities.items())
        print(f"SuccessFactors records upserted: {counts}")
    if expected < total:
        print(f"expected: {expected} of {total} offers through (the others cannot be mapped)")
    ok = marked == expected and duplicates == 0 and len(sim_hris.records) == expected
    kept = sum(len(f) for f in sim_hris.files.values())
    if files:
        print(f"HRIS files expected: {files} (the documents the map chooses, of mappable offers)")
    ok = ok and file_duplicates == 0 and kept == files
    print("\ndemo " + ("OK" if ok else "FAILED: unexpected outcome"))
    return 0 if ok else 1


def _show_files(sim_hris: hris.HrisState) -> int:
    """The files attached to each employee (BambooHR: the offer's documents); duplicates."""
    if not sim_hris.files:
        return 0
    from worker.simulators.hris.bamboohr import FILE_CATEGORIES
    from worker.simulators.hris.files import duplicates

    names: dict[Any, Any] = dict(FILE_CATEGORIES)
    print("\nfiles attached to each employee (file name, category, size):")
    for record_id, files in sorted(sim_hris.files.items()):
        shown = [
            (f["name"], names.get(f.get("category"), f.get("category")), f["size"]) for f in files
        ]
        listed = "; ".join(f"{name} ({category}, {size:,} bytes)" for name, category, size in shown)
        print(f"  {record_id}: {listed}")
    twice = duplicates(sim_hris)
    print(f"HRIS files: {sum(len(f) for f in sim_hris.files.values())}, duplicate files: {twice}")
    return twice


def simulated_tenant(index: int) -> pageup.PageUpState:
    """Tenant ``index`` of a multi-tenant simulator (``simulate --tenants N``): its own id and
    client id, the usual simulator secret."""
    return pageup.PageUpState(tenant=f"{1000 + index}", client_id=f"tenant-{index:04d}")


def serve_simulators(
    *, offers: int, latency: float, seed: int, tenants: int = 1, page_size: int | None = None
) -> int:
    """Serve both simulators until SIGTERM/SIGINT; print their URLs as one JSON line. With
    ``tenants`` above 1 PageUp serves that many tenants (``simulated_tenant``), each with
    ``offers`` offers, on one port."""
    # Two servers share this process's GIL; with the default 5 ms switch interval a response
    # could wait that long for the other server's thread, adding latency nobody asked for.
    sys.setswitchinterval(0.0005)
    faults = pageup.PageUpFaults(latency_seconds=latency, seed=seed, page_size=page_size)
    documents = storage.StorageState()  # one storage listener for every tenant's documents
    states = [simulated_tenant(n) for n in range(tenants)] if tenants > 1 else [
        pageup.PageUpState()]  # fmt: skip
    for n, state in enumerate(states):
        state.faults, state.storage = faults, documents
        first_id = 1_000_000 + 1000 * n if tenants > 1 else 900101
        state.load(make_offers(offers, seed=seed + n, first_id=first_id))
    sim_hris = hris.HrisState(faults=hris.HrisFaults(latency_seconds=latency, seed=seed))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with (
        BackgroundServer(pageup.build_app(states, loader=tenants > 1)) as p,
        BackgroundServer(hris.build_app(sim_hris)) as h,
        BackgroundServer(storage.build_app(documents)) as s,
    ):
        documents.url = s.url
        print(json.dumps({"pageup": p.url, "hris": h.url, "storage": s.url}), flush=True)
        stop.wait()
    print(json.dumps({"stopped": True}), file=sys.stderr)
    return 0
