"""``hirebridge demo --inbound``: the service receiving Apna leads and POP Engine notifications.

Starts the HRIS simulator (the delivery target), the POP Engine simulator (scores) and the
PageUp simulator, runs ``hirebridge run`` as its own process with inbound enabled, then:
Apna's pusher sends leads (one of them twice, as Apna's retry would, and one invalid), and the
engine's notifier sends assessment notifications from the config string `pop-config` prints.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

from worker.demo import default_mapping, simulator_settings
from worker.demo_folder import fresh_demo_folder
from worker.inbound.pop import build_config
from worker.settings import Settings
from worker.simulators import hris, pageup, pop_engine
from worker.simulators.apna import ApnaPusher, make_leads
from worker.simulators.pop_engine import Notifier
from worker.simulators.server import BackgroundServer

APNA_TOKEN = "demo-apna-token"  # noqa: S105 (a demo credential)
POP_AUTH = "demo-pop:demo-pop-password"
LEADS, ASSESSMENTS = 8, 3


def run_inbound_demo(*, folder: Path) -> int:
    fresh_demo_folder(folder)
    sim_hris = hris.HrisState()
    sim_engine = pop_engine.PopEngineState()
    for index in range(ASSESSMENTS):
        sim_engine.scores[str(10013810 + index)] = {
            "score": 60.5 + index, "score_final": 61 + index, "score_text": "Recommended",
        }  # fmt: skip
    with ExitStack() as stack:
        hris_server = stack.enter_context(BackgroundServer(hris.build_app(sim_hris)))
        engine_server = stack.enter_context(BackgroundServer(pop_engine.build_app(sim_engine)))
        pageup_server = stack.enter_context(
            BackgroundServer(pageup.build_app(pageup.PageUpState()))
        )
        config, data = _write_config(folder, pageup_server.url, hris_server.url, engine_server.url)
        print(f"HRIS simulator (target)  {hris_server.url}/api/intake/{{leads,assessments}}")
        print(f"POP Engine simulator     {engine_server.url}/api/1.0")
        log_path = folder / "hirebridge.log"
        with log_path.open("w") as log_file:
            worker = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "worker", "--config", str(config), "run"],
                stdout=subprocess.DEVNULL, stderr=log_file, env={**os.environ},
            )  # fmt: skip
            try:
                base = _wait_for_service(data["service"]["port"], worker)
                print(f"hirebridge run           {base}  (log: {log_path})\n")
                sent = asyncio.run(_push(base, Settings(**data)))
                delivered = _wait_for(lambda: _delivered(sim_hris) >= (LEADS, ASSESSMENTS))
            finally:
                worker.send_signal(signal.SIGTERM)
                code = worker.wait(timeout=60)
    return _summarise(sent, sim_hris, delivered, code, config)


def _write_config(folder: Path, pageup_url: str, hris_url: str, engine_url: str) -> Any:
    database = f"sqlite:///{(folder / 'hirebridge.sqlite').resolve()}"
    data = simulator_settings(pageup_url, hris_url, database)
    key = {"type": "api_key", "header_name": "X-API-Key", "api_key": hris.HrisState().api_key}
    port = _free_port()

    def target(collection: str, mapping: str) -> dict[str, Any]:
        return {"url": f"{hris_url}/api/intake/{collection}", "auth": key,
                "mapping": str(default_mapping(mapping))}  # fmt: skip

    data["inbound"] = {
        "public_url": f"https://127.0.0.1:{port}",
        "apna": {"enabled": True, "auth": {"type": "bearer", "token": APNA_TOKEN},
                 "target": target("leads", "apna_leads.yaml")},
        "pop": {"enabled": True, "auth": POP_AUTH,
                "target": target("assessments", "pop_assessments.yaml"),
                "engine": {"api_url": f"{engine_url}/api/1.0", "username": "pop-sim-partner",
                           "password": "pop-sim-password"}},
    }  # fmt: skip
    data["service"] = {"port": port, "schedule": {"interval_seconds": 3600}}
    data["logging"] = {"format": "json"}
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config, data


async def _push(base: str, settings: Settings) -> dict[str, Any]:
    leads = make_leads(LEADS)
    invalid = {**leads[0], "gender": "x", "contact_info": {}}
    pusher = ApnaPusher(f"{base}/inbound/apna", token=APNA_TOKEN, retry_delay=0.2)
    config = build_config(settings.inbound, show_secret=True).replace("https://", "http://")
    notifier = Notifier(config, time_scale=0.01)
    async with httpx.AsyncClient() as client:
        results = await asyncio.gather(*(pusher.push(client, lead) for lead in leads))
        repeat = await pusher.push(client, leads[3])  # as if Apna had not seen our answer
        refused = await pusher.push(client, invalid)
        notified = await asyncio.gather(*(
            notifier.notify(client, str(10013810 + i), {"report_id": "1", "aname": "EPOP"})
            for i in range(ASSESSMENTS)
        ))  # fmt: skip
    print(f"Apna leads pushed:         {LEADS}, answered 200: {sum(r.delivered for r in results)}")
    print(
        f"  a lead pushed again:     answered {repeat.statuses[-1]} (recognised, not stored twice)"
    )
    print(
        f"  an invalid lead:         answered {refused.statuses} "
        "(400 names the fields; Apna retries once)"
    )
    print(f"POP notifications:         {ASSESSMENTS}, "
          f"delivered: {sum(n.outcome == 'delivered' for n in notified)}")  # fmt: skip
    return {"leads": results, "repeat": repeat, "refused": refused, "notified": notified}


def _delivered(sim: hris.HrisState) -> tuple[int, int]:
    return len(sim.collected.get("leads", [])), len(sim.collected.get("assessments", []))


def _wait_for(done: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return False


def _wait_for_service(port: int, worker: subprocess.Popen[bytes]) -> str:
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if worker.poll() is not None:
            raise RuntimeError("hirebridge run exited; see the log")
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    if not _wait_for(up):
        raise RuntimeError("hirebridge run did not start listening")
    return base


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _summarise(
    sent: dict[str, Any], sim: hris.HrisState, delivered: bool, code: int, config: Path
) -> int:
    leads, assessments = _delivered(sim)
    duplicates = leads - len({lead["externalId"] for lead in sim.collected.get("leads", [])})
    print(f"\ndelivered to the target:   {leads} leads, {assessments} assessments (with scores)")
    print(f"duplicates at the target:  {duplicates}")
    print(f"service stopped on SIGTERM with exit code {code}")
    print(
        f"inspect the inbox:         {Path(sys.executable).with_name('hirebridge')} "
        f"--config {config} inbox"
    )
    ok = (
        delivered and duplicates == 0 and code == 0 and (leads, assessments) == (LEADS, ASSESSMENTS)
        and all(r.delivered for r in sent["leads"]) and sent["repeat"].statuses == [200]
        and sent["refused"].statuses == [400, 400]
        and all(n.outcome == "delivered" for n in sent["notified"])
    )  # fmt: skip
    print("\ndemo OK" if ok else "\ndemo FAILED: unexpected outcome")
    return 0 if ok else 1
