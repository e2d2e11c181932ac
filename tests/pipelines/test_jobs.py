"""Job postings against the ATS simulator: every path of the ERP Integration guide."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Sims
from tests.pipelines.test_offers import Crash
from worker.pipelines.jobs import JobRunReport
from worker.runtime import job_sync, open_store
from worker.settings import NotificationSettings, Settings
from worker.simulators import ats
from worker.simulators.server import BackgroundServer
from worker.store.jobs import JobLedger, JobState
from worker.store.notices import NoticeStore

FAST = {"retry_backoff_initial_seconds": 0, "circuit_breaker_failures": 100}


def job(source_id: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"id": source_id, "title": title, "employment_type": "Full Time",
            "work_mode": "Hybrid", "city": "Riyadh", "country": "Saudi Arabia",
            "apply_url": f"https://careers.example.com/{source_id}", "status": "open",
            **extra}  # fmt: skip


class Rig:
    def __init__(self, sims: Sims, db_url: str, folder: Path, url: str) -> None:
        self.sims, self.db_url, self.folder, self.url = sims, db_url, folder, url

    def settings(self, **ats_overrides: Any) -> Settings:
        data = self.sims.settings_data(self.db_url, sync=FAST)
        data["ats"] = {
            "enabled": True, "base_url": f"{self.url}{ats.BASE}", "api_key": "ats-sim-key",
            "source_name": "Main_ERP", "mapping": str(REPO / "mappings" / "ats_jobs.yaml"),
            "source": {"type": "directory", "directory": str(self.folder)},
            "retry": {"attempts": 2, "backoff_initial_seconds": 0, "timeout_seconds": 2},
            **ats_overrides,
        }  # fmt: skip
        return Settings(**data)

    def write(self, jobs: list[dict[str, Any]], name: str = "jobs.json") -> None:
        (self.folder / name).write_text(json.dumps(jobs))

    def run(self, **ats_overrides: Any) -> JobRunReport:
        settings = self.settings(**ats_overrides)

        async def go() -> JobRunReport:
            async with job_sync(settings) as sync:
                return await sync.run()

        return asyncio.run(go())

    def states(self) -> dict[str, JobState]:
        engine = open_store(self.settings())
        try:
            return JobLedger(engine, "Main_ERP").all()
        finally:
            engine.dispose()


@pytest.fixture
def ats_sim() -> Iterator[tuple[ats.AtsState, str]]:
    state = ats.AtsState()
    with BackgroundServer(ats.build_app(state)) as server:
        yield state, server.url


@pytest.fixture
def rig(sims: Sims, db_url: str, tmp_path: Path, ats_sim: Any) -> Rig:
    folder = tmp_path / "jobs"
    folder.mkdir()
    return Rig(sims, db_url, folder, ats_sim[1])


def test_create_then_nothing_then_update_then_close(rig: Rig, ats_sim: Any) -> None:
    state, _ = ats_sim
    rig.write([job("P1", "Engineer"), job("P2", "Nurse")])

    first = rig.run()
    assert (first.created, first.updated, first.closed) == (2, 0, 0) and first.ok
    ids = {s.source_id: s.ats_job_id for s in rig.states().values()}
    assert set(ids.values()) == {"ACME-2026-0001", "ACME-2026-0002"}
    assert state.jobs[ids["P1"]]["status"] == "PUBLISHED"  # auto_publish

    again = rig.run()
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert state.calls["update_job"] == 0  # unchanged: no call at all

    rig.write([job("P1", "Engineer", salary_min=18000, salary_max=25000, currency="SAR")])
    changed = rig.run()
    assert (changed.updated, changed.closed) == (1, 1)
    assert state.jobs[ids["P1"]]["salary_range"] == "SAR 18000 - 25000"
    assert state.jobs[ids["P2"]]["status"] == "CLOSED"
    assert rig.states()["P2"].status == "closed"

    rig.write([job("P1", "Engineer", salary_min=18000, salary_max=25000, currency="SAR"),
               job("P2", "Nurse")])  # fmt: skip
    back = rig.run()
    assert back.updated == 1 and state.jobs[ids["P2"]]["status"] == "PUBLISHED"
    assert len(state.jobs) == 2


def test_csv_and_json_files_and_bad_records(rig: Rig, ats_sim: Any) -> None:
    rig.write([job("P1", "Engineer")])
    with (rig.folder / "more.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["id", "title", "apply_url", "employment_type"])
        writer.writeheader()
        writer.writerow({"id": "P3", "title": "Pharmacist", "apply_url": "https://c.example.com/3",
                         "employment_type": "Part Time"})  # fmt: skip
        writer.writerow({"id": "", "title": "No id", "apply_url": "https://c.example.com/x"})
        writer.writerow({"id": "P1", "title": "Twice", "apply_url": "https://c.example.com/1"})

    report = rig.run()

    assert report.created == 1  # P3; P1 is given twice, so it is held, not sent
    assert any("more.csv row 3: no 'id'" in p for p in report.source_problems)
    assert any("more.csv row 4: id 'P1' also in jobs.json item 1" in p
               for p in report.source_problems)  # fmt: skip
    (created,) = ats_sim[0].jobs.values()
    assert created["title"] == "Pharmacist" and created["job_type"] == "PART_TIME"
    assert not report.ok


def test_an_incomplete_source_closes_nothing_and_the_guard_holds(rig: Rig, ats_sim: Any) -> None:
    rig.write([job(f"P{i}", f"Role {i}") for i in range(4)])
    assert rig.run().created == 4
    (rig.folder / "broken.json").write_text("{not json")
    rig.write([job("P0", "Role 0")])
    incomplete = rig.run()
    assert incomplete.closed == 0 and any("broken.json: cannot be read" in p
                                          for p in incomplete.source_problems)  # fmt: skip
    (rig.folder / "broken.json").unlink()
    guarded = rig.run()  # 3 of 4 open jobs missing: more than half
    assert guarded.closed == 0 and "more than ats.max_close_fraction" in (guarded.halted or "")
    allowed = rig.run(max_close_fraction=1.0)
    assert allowed.closed == 3
    assert sum(j["status"] == "CLOSED" for j in ats_sim[0].jobs.values()) == 3


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (job("P1", "Engineer", employment_type="Seasonal"), "field 'job_type': required"),
        (job("P1", "Engineer", apply_url="careers page"), "application_url: not an http(s) URL"),
        (job("P1", "Engineer", closing_date="next week"), "application_deadline"),
    ],
    ids=["unknown-enumeration", "bad-url", "bad-deadline"],
)
def test_invalid_jobs_are_parked_before_anything_is_sent(
    rig: Rig, ats_sim: Any, record: dict[str, Any], expected: str
) -> None:
    rig.write([record, job("P2", "Nurse")])

    report = rig.run()

    assert report.failed == 1 and report.created == 1
    state = rig.states()["P1"]
    assert state.parked_at is not None and expected in (state.last_error or "")
    assert ats_sim[0].calls["create_job"] == 1  # only P2 reached the ATS


def test_the_atss_own_400_parks_the_job_with_its_code(rig: Rig, ats_sim: Any) -> None:
    rig.write([job("P1", "Engineer " * 30), job("P2", "Nurse")])  # the ATS caps titles

    report = rig.run()

    assert report.failed == 1 and report.created == 1 and not report.halted
    state = rig.states()["P1"]
    assert state.parked_at is not None
    assert "HTTP 400 INVALID_TYPE: title is longer than 200 characters" in (state.last_error or "")


def test_a_parked_job_tells_hr(rig: Rig, ats_sim: Any) -> None:
    rig.write([job("P1", "Engineer " * 30)])
    channel = {"hr": {"url": "json://127.0.0.1:9/hook"}}
    settings = rig.settings().model_copy(
        update={"notifications": NotificationSettings(channels=channel)}
    )

    async def go() -> list[Any]:
        async with job_sync(settings) as sync:
            await sync.run()
        engine = open_store(settings)
        try:
            return NoticeStore(engine).recent()
        finally:
            engine.dispose()

    ((_, notice, _),) = asyncio.run(go())
    assert (notice.kind, notice.source, notice.subject) == ("job", "ats", "P1")
    assert "The job posting P1 could not be sent to the ATS: HTTP 400 INVALID_TYPE" in (
        notice.problem
    )


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda s: setattr(s.sources["Main_ERP"], "api_key", "rotated"), 401),
        (lambda s: setattr(s.sources["Main_ERP"], "active", False), 401),
        (lambda s: setattr(s.sources["Main_ERP"], "trusted_ips", ["10.9.9.9"]), 403),
        (lambda s: s.sources.update({"Other": s.sources.pop("Main_ERP")}), 404),
    ],
    ids=["wrong-key", "inactive-source", "ip-not-allowed", "invalid-source"],
)
def test_refusals_that_condemn_every_call_halt_the_run(
    rig: Rig, ats_sim: Any, change: Any, status: int
) -> None:
    rig.write([job("P1", "Engineer"), job("P2", "Nurse"), job("P3", "Chef")])
    change(ats_sim[0])

    report = rig.run()

    assert report.halted and "the ATS refused us" in report.halted
    assert report.failed == 1  # the run stopped at the first job
    assert not ats_sim[0].jobs
    if status == 404:
        assert "configuration error: ats.source_name 'Main_ERP'" in report.halted


def test_job_exists_is_reconciled_by_linking_and_updating(rig: Rig, ats_sim: Any) -> None:
    state, _ = ats_sim
    state.jobs["ACME-2026-0001"] = {"title": "Engineer", "source_name": "Main_ERP",
                                    "status": "PUBLISHED", "department": "Old"}  # fmt: skip
    rig.write([job("P1", "Engineer", department="Information Technology")])

    report = rig.run()

    assert report.reconciled == 1 and report.created == 0 and report.ok
    assert rig.states()["P1"].ats_job_id == "ACME-2026-0001"
    assert state.jobs["ACME-2026-0001"]["department"] == "Information Technology"
    assert len(state.jobs) == 1


def test_crash_after_the_create_is_settled_by_the_conflict_not_duplicated(
    rig: Rig, ats_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.write([job("P1", "Engineer")])
    real = JobLedger.record_synced

    def crash(self: JobLedger, source_id: str, **kw: Any) -> None:
        raise Crash

    monkeypatch.setattr(JobLedger, "record_synced", crash)
    with pytest.raises(Crash):
        rig.run()
    assert rig.states()["P1"].status == "creating"
    monkeypatch.setattr(JobLedger, "record_synced", real)

    report = rig.run()

    assert report.reconciled == 1 and len(ats_sim[0].jobs) == 1
    assert rig.states()["P1"].ats_job_id == "ACME-2026-0001"


def test_server_errors_are_retried_then_retried_next_run(rig: Rig, ats_sim: Any) -> None:
    state, _ = ats_sim
    rig.write([job("P1", "Engineer")])
    state.fail_next["create-job"] = 1
    assert rig.run().created == 1  # the second try inside the run succeeded

    rig.write([job("P1", "Engineer"), job("P2", "Nurse")])
    state.fail_next["create-job"] = 2  # both tries of P2
    failed = rig.run()
    assert failed.failed == 1 and rig.states()["P2"].parked_at is None
    assert rig.run().created == 1 and len(state.jobs) == 2


def test_http_source_and_api_key_in_the_query(rig: Rig, ats_sim: Any) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def positions(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != "Bearer erp-token":
            return JSONResponse({"message": "no"}, 401)
        return JSONResponse({"data": {"positions": [job("H1", "Driver")]}})

    app = Starlette(routes=[Route("/positions", positions)])
    with BackgroundServer(app) as erp:
        source = {"type": "http", "url": f"{erp.url}/positions", "items_path": "data.positions",
                  "auth": {"type": "bearer", "token": "erp-token"}}  # fmt: skip
        report = rig.run(source=source, api_key_in="query")
    assert report.created == 1 and report.ok
    (created,) = ats_sim[0].jobs.values()
    assert created["title"] == "Driver"
