"""The probes and the reload endpoint, and schedule validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from worker.service.health import Liveness, Readiness, build_app
from worker.service.schedule import trigger_for
from worker.settings import DatabaseSettings, ScheduleSettings
from worker.store.db import create_store_engine, migrate
from worker.store.ledger import Ledger


def ledger(tmp_path: Path) -> Ledger:
    engine = create_store_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 's.sqlite'}"))
    migrate(engine)
    return Ledger(engine)


async def refuse() -> tuple[bool, str]:
    return False, "map.yaml:2:3: field 'a': unknown function nosuch()"


def test_liveness_fails_when_the_heartbeat_is_stale(tmp_path: Path) -> None:
    liveness = Liveness(stale_after=30, scheduling=True)
    client = TestClient(build_app(liveness, Readiness(ledger(tmp_path)), refuse))
    assert client.get("/healthz").status_code == 200
    liveness.last_beat -= 31
    stale = client.get("/healthz")
    assert stale.status_code == 503 and stale.json()["status"] == "stale"


def test_readiness_names_what_is_not_ready(tmp_path: Path) -> None:
    readiness = Readiness(
        ledger(tmp_path),
        sources=lambda: {"au": "token refused", "nz": "token refused"},
        targets=lambda: {"hris": "resting 120 s: hris refused the credentials"},
        map_problem="field map invalid",
    )
    client = TestClient(build_app(Liveness(30, scheduling=True), readiness, refuse))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "database": "ok", "field_map": "field map invalid",
        "sources": "no source can get a PageUp token",
    }  # fmt: skip
    assert answer.json()["targets"]["hris"].startswith("resting")
    one_tenant_refused = Readiness(ledger(tmp_path), sources=lambda: {"au": "token refused",
                                                                      "nz": "ok"})  # fmt: skip
    fine = TestClient(build_app(Liveness(30, scheduling=True), one_tenant_refused, refuse))
    answer = fine.get("/readyz")
    assert answer.status_code == 200, "one tenant refusing us does not take the service out"
    assert answer.json()["sources"] == {"au": "token refused", "nz": "ok"}
    gone = tmp_path / "gone"
    engine = create_store_engine(DatabaseSettings(url=f"sqlite:///{gone / 'x.sqlite'}"))
    gone.rmdir()  # the database's folder disappears: connecting fails
    broken = Readiness(Ledger(engine))
    down = TestClient(build_app(Liveness(30, scheduling=True), broken, refuse)).get("/readyz")
    assert down.status_code == 503 and down.json()["checks"]["database"].startswith("unreachable")


def test_reload_is_loopback_only_and_reports_refusal(tmp_path: Path) -> None:
    app = build_app(Liveness(30), Readiness(ledger(tmp_path)), refuse)
    assert TestClient(app).post("/-/reload").status_code == 403  # client host "testclient"
    local = TestClient(app, client=("127.0.0.1", 5000)).post("/-/reload")
    assert local.status_code == 422 and "unknown function" in local.json()["problems"]


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [({"cron": "*/5 * * *"}, "bad cron expression"),
     ({"cron": "0 8 * * mon", "timezone": "Mars/Olympus"}, "unknown time zone"),
     ({"interval_seconds": None}, "give interval_seconds or cron")],
)  # fmt: skip
def test_bad_schedules_are_refused(schedule: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ScheduleSettings.model_validate(schedule)


def test_a_cron_schedule_in_a_time_zone() -> None:
    schedule = ScheduleSettings.model_validate(
        {"cron": "0 8 * * mon-fri", "timezone": "Australia/Sydney"}
    )
    trigger = trigger_for(schedule)
    assert str(trigger.timezone) == "Australia/Sydney"
    assert "day_of_week='mon-fri'" in str(trigger)
