"""The shipped maps against the simulator behaving like each real API: auth, body shape, ids."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Sims
from tests.pipelines.test_offers import ledger_states, run_sync
from worker.runtime import open_store
from worker.settings import Settings
from worker.store.ledger import Ledger

FOUR = {"offers": 4}


def hris_ids(sims: Sims, db_url: str) -> dict[str, str | None]:
    engine = open_store(sims.settings(db_url))
    ledger = Ledger(engine)
    try:
        return {
            str(s.offer_id): ledger.get("pageup", str(s.offer_id)).record_id  # type: ignore[union-attr]
            for s in sims.samples
        }
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("sims", "check"),
    [
        ({**FOUR, "target": "bamboohr"}, lambda r: r["firstName"] and r["employeeNumber"]),
        ({**FOUR, "target": "hibob"}, lambda r: r["work"]["site"] and r["work"]["startDate"]),
        ({**FOUR, "target": "xero"}, lambda r: r["DateOfBirth"].startswith("/Date(")),
    ],
    indirect=["sims"],
    ids=["bamboohr", "hibob", "xero"],
)
def test_each_shipped_map_creates_employees_and_keeps_their_ids(
    sims: Sims, db_url: str, check: Any
) -> None:
    report = run_sync(sims.settings(db_url))

    assert report.ok and report.succeeded == 4
    assert len(sims.hris.records) == 4 and all(check(r) for r in sims.hris.records.values())
    # The id comes from the Location header (BambooHR), the body (HiBob) or
    # Employees[0].EmployeeID (Xero): each flavour answers only its own way.
    assert sorted(str(i) for i in hris_ids(sims, db_url).values()) == sorted(sims.hris.records)


@pytest.mark.parametrize(
    ("sims", "auth"),
    [
        ({**FOUR, "target": "bamboohr"}, {"password": "x", "username": "wrong-key"}),
        ({**FOUR, "target": "hibob"}, {"password": "wrong-token"}),
        ({**FOUR, "target": "xero"}, {"client_secret": "wrong"}),
    ],
    indirect=["sims"],
    ids=["bamboohr", "hibob", "xero"],
)
def test_refused_credentials_halt_the_run_and_post_nothing(
    sims: Sims, db_url: str, auth: dict[str, str]
) -> None:
    data = sims.settings_data(db_url)
    data["hris"]["auth"].update(auth)

    report = run_sync(Settings(**data))

    assert report.halted and "hris" in report.halted
    assert not sims.hris.records and sum(sims.pageup.processed.values()) == 0
    assert all(state.status != "processed" for state in _offers(ledger_states(Settings(**data))))


def _offers(states: dict[str, Any]) -> list[Any]:
    return [state for key, state in states.items() if key != "_counts"]


@pytest.mark.parametrize("sims", [{**FOUR, "target": "xero"}], indirect=True)
def test_xero_needs_its_tenant_header(sims: Sims, db_url: str) -> None:
    data = sims.settings_data(db_url)
    data["hris"]["headers"] = {"xero-tenant-id": "another-organisation"}

    report = run_sync(Settings(**data))

    assert not report.ok and not sims.hris.records
    state = ledger_states(Settings(**data))[str(sims.samples[0].offer_id)]
    assert state.http_status == 403 and "xero-tenant-id" in state.last_error
