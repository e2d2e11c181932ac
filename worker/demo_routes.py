"""``hirebridge demo --routes``: two PageUp tenants, two payrolls and an HRIS, offers routed.

Runs ``examples/routes.yaml`` (the README's routing example) against simulators: one PageUp
simulator serving both tenants, and one HRIS simulator per target. Tenant ``au`` hires in
Australia; tenant ``group`` in Australia and New Zealand. Every offer goes to the HRIS and to
the payroll of its country, and is marked processed in its tenant once both accepted it.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import worker
from worker.demo_folder import fresh_demo_folder
from worker.observability import configure_logging
from worker.runtime import offer_worker
from worker.settings import Settings
from worker.simulators import hris, pageup
from worker.simulators.sample import SampleOffer, make_offers
from worker.simulators.server import BackgroundServer


@dataclass(frozen=True)
class Tenant:
    tenant: str
    offers: int
    first_id: int
    new_zealand_share: float


TENANTS = {"au": Tenant("218", 4, 900101, 0.0), "group": Tenant("431", 8, 910101, 0.5)}
TARGETS = ("payroll_au", "payroll_nz", "hris")


def example_config() -> Path:
    bundled = Path(worker.__file__).resolve().parent.parent / "examples" / "routes.yaml"
    return bundled if bundled.exists() else Path("examples") / "routes.yaml"


def routes_settings(
    pageup_url: str, target_urls: dict[str, str], database_url: str, sim: hris.HrisState
) -> dict[str, Any]:
    """``examples/routes.yaml``, pointed at the simulators (maps resolved to absolute paths)."""
    example = example_config()
    data: dict[str, Any] = yaml.safe_load(example.read_text())
    for name, source in data["sources"].items():
        state = pageup.PageUpState(tenant=TENANTS[name].tenant)
        source.update(
            client_id=f"sim-{name}", client_secret=state.client_secret,
            api_base_url=f"{pageup_url}/v3/{state.tenant}/recruitment/hire/",
            token_url=f"{pageup_url}/connect/token",
            retry={"attempts": 4, "backoff_initial_seconds": 0.05, "timeout_seconds": 5},
        )  # fmt: skip
    for name, target in data["targets"].items():
        target.update(
            url=f"{target_urls[name]}/api/employees",
            auth={"type": "api_key", "api_key": sim.api_key},
            mapping=str((example.parent / target["mapping"]).resolve()),
            retry={"attempts": 4, "backoff_initial_seconds": 0.05, "timeout_seconds": 5},
        )  # fmt: skip
    data["database"] = {"url": database_url}
    return data


def run_routes_demo(*, folder: Path) -> int:
    """Sync both tenants once and show where each offer went. Exit 0 when all went as
    expected: each offer in the HRIS and in its country's payroll once, and marked once."""
    fresh_demo_folder(folder)
    states, samples = tenants()
    sims = {name: hris.HrisState() for name in TARGETS}
    with ExitStack() as stack, (folder / "hirebridge.log").open("w") as log_file:
        configure_logging("info", "json", stream=log_file)
        pageup_server = stack.enter_context(
            BackgroundServer(pageup.build_app(list(states.values())))
        )
        urls = {name: stack.enter_context(BackgroundServer(hris.build_app(sim))).url
                for name, sim in sims.items()}  # fmt: skip
        database_url = f"sqlite:///{(folder / 'hirebridge.sqlite').resolve()}"
        data = routes_settings(pageup_server.url, urls, database_url, sims["hris"])
        (folder / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        print(f"config   {example_config()} (pointed at the simulators: {folder / 'config.yaml'})")
        print(f"PageUp   {pageup_server.url}  tenants: " + ", ".join(
            f"{name} ({state.tenant}, {len(state.offers)} offers)"
            for name, state in states.items()))  # fmt: skip
        for name, url in urls.items():
            print(f"target   {name:<11} {url}")
        reports = asyncio.run(_run(Settings(**data)))
    for report in reports:
        print(f"\nrun of {report.source}: {report.outcome}; listed {report.listed}, "
              f"processed {report.succeeded}, failed {report.failed}")  # fmt: skip
    return _summarise(states, samples, sims)


def tenants() -> tuple[dict[str, pageup.PageUpState], dict[str, list[SampleOffer]]]:
    tenants, samples = {}, {}
    for name, spec in TENANTS.items():
        state = pageup.PageUpState(tenant=spec.tenant, client_id=f"sim-{name}")
        offers = make_offers(spec.offers, seed=11, first_id=spec.first_id,
                             new_zealand_share=spec.new_zealand_share)  # fmt: skip
        state.load(offers)
        tenants[name], samples[name] = state, offers
    return tenants, samples


async def _run(settings: Settings) -> list[Any]:
    async with offer_worker(settings) as running:
        return await running.run_once()


def _summarise(
    tenants: dict[str, pageup.PageUpState],
    samples: dict[str, list[SampleOffer]],
    sims: dict[str, hris.HrisState],
) -> int:
    problems = []
    print(f"\n{'tenant':<7} {'offer':<8} {'country':<12} {'sent to':<24} marked")
    for name, offers in samples.items():
        for sample in offers:
            offer_id = str(sample.offer_id)
            country = sample.offer["Location"]["Country"]
            went = [t for t in TARGETS if sims[t].external_ids()[offer_id]]
            marked = tenants[name].processed[offer_id]
            print(f"{name:<7} {offer_id:<8} {country:<12} {', '.join(went):<24} {marked}")
            payroll = "payroll_au" if country == "Australia" else "payroll_nz"
            if sorted(went) != sorted(["hris", payroll]) or marked != 1:
                problems.append(offer_id)
    duplicates = sum(1 for sim in sims.values() for n in sim.external_ids().values() if n > 1)
    for name, sim in sims.items():
        print(f"\n{name}: {len(sim.records)} records")
    ok = not problems and duplicates == 0
    print("\ndemo " + ("OK" if ok else f"FAILED: unexpected outcome for {problems}"))
    return 0 if ok else 1
