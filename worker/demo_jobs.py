"""``hirebridge demo --jobs``: job postings from a folder of JSON and CSV files into the ATS
simulator, over three runs: create; nothing to do; update, close, and a refused record."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import yaml

from worker.demo import default_mapping, simulator_settings
from worker.demo_folder import fresh_demo_folder
from worker.observability import configure_logging
from worker.runtime import job_sync
from worker.settings import Settings
from worker.simulators import ats
from worker.simulators.server import BackgroundServer

JOBS = [
    {"id": "POS-1001", "title": "Payroll Officer", "department": "Finance",
     "employment_type": "Full Time", "work_mode": "Hybrid", "city": "Sydney",
     "country": "Australia", "apply_url": "https://careers.example.com/1001",
     "closing_date": "2027-01-31", "status": "open"},
    {"id": "POS-1002", "title": "Registered Nurse", "department": "Clinical",
     "employment_type": "Part Time", "work_mode": "Onsite", "city": "Melbourne",
     "country": "Australia", "apply_url": "https://careers.example.com/1002", "status": "open"},
]  # fmt: skip
CSV_ROWS = [
    {"id": "POS-1003", "title": "Store Manager", "employment_type": "Casual",
     "apply_url": "https://careers.example.com/1003", "status": "open"},
]  # fmt: skip


def run_jobs_demo(*, folder: Path) -> int:
    fresh_demo_folder(folder)
    source = folder / "jobs"
    source.mkdir()
    state = ats.AtsState()
    _write(source, JOBS, CSV_ROWS)
    with (
        (folder / "hirebridge.log").open("w") as log_file,
        BackgroundServer(ats.build_app(state)) as server,
    ):
        configure_logging("info", "json", stream=log_file)
        database = f"sqlite:///{(folder / 'hirebridge.sqlite').resolve()}"
        data = simulator_settings("http://127.0.0.1:9", "http://127.0.0.1:9", database)
        data["ats"] = {"enabled": True, "base_url": f"{server.url}{ats.BASE}",
                       "api_key": "ats-sim-key", "source_name": "Main_ERP",
                       "mapping": str(default_mapping("ats_jobs.yaml")),
                       "source": {"type": "directory", "directory": str(source)}}  # fmt: skip
        (folder / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        settings = Settings(**data)
        print(f"ATS simulator  {server.url}{ats.BASE}   source folder {source}\n")
        first = _run(settings, "first run  (3 jobs in JSON and CSV)")
        second = _run(settings, "second run (nothing changed)")
        changed = [{**JOBS[0], "closing_date": "2027-02-28"},
                   {**JOBS[1], "employment_type": "Seasonal"}]  # fmt: skip
        _write(source, changed, [])
        third = _run(settings, "third run  (one changed, one refused, one removed)")
    print("\nin the ATS:")
    for job_id, job in state.jobs.items():
        print(f"  {job_id}  {job['status']:<9} {job['title']:<18} deadline "
              f"{job.get('application_deadline', '-')}")  # fmt: skip
    print(f"\nstate: hirebridge --config {folder / 'config.yaml'} jobs status")
    ok = (first.created == 3 and second.unchanged == 3 and third.updated == 1
          and third.closed == 1 and third.failed == 1 and len(state.jobs) == 3)  # fmt: skip
    print("\ndemo OK" if ok else "\ndemo FAILED: unexpected outcome")
    return 0 if ok else 1


def _run(settings: Settings, label: str) -> Any:
    async def go() -> Any:
        async with job_sync(settings) as sync:
            return await sync.run()

    report = asyncio.run(go())
    print(f"{label}: created {report.created}, updated {report.updated}, unchanged "
          f"{report.unchanged}, closed {report.closed}, failed {report.failed}")  # fmt: skip
    return report


def _write(folder: Path, jobs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    (folder / "positions.json").write_text(json.dumps(jobs, indent=2))
    with (folder / "more.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["id", "title", "employment_type", "apply_url", "status"])
        writer.writeheader()
        writer.writerows(rows)
