"""The shipped maps against the simulator behaving like each real API: auth, body shape, ids."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Sims
from tests.pipelines.test_offers import Crash, ledger_states, run_sync
from worker.runtime import open_store
from worker.settings import Settings
from worker.simulators.hris import successfactors
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
        ({**FOUR, "target": "successfactors"}, lambda r: r["dateOfBirth"].startswith("/Date(")),
        ({**FOUR, "target": "employmenthero"}, lambda r: r["taxFileNumber"] and r["externalId"]),
    ],
    indirect=["sims"],
    ids=["bamboohr", "hibob", "xero", "successfactors", "employmenthero"],
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
        ({**FOUR, "target": "successfactors"}, {"password": "wrong"}),
        # OAuth2 client credentials with a bad secret: the token endpoint refuses them
        ({**FOUR, "target": "successfactors"}, {"type": "oauth2", "client_id": "hris-sim-client",
          "client_secret": "wrong", "token_url": "{hris_url}/oauth/token"}),
        ({**FOUR, "target": "employmenthero"}, {"username": "wrong-key"}),
    ],
    indirect=["sims"],
    ids=["bamboohr", "hibob", "xero", "successfactors", "successfactors-oauth2", "employmenthero"],
)  # fmt: skip
def test_refused_credentials_halt_the_run_and_post_nothing(
    sims: Sims, db_url: str, auth: dict[str, str]
) -> None:
    data = sims.settings_data(db_url)
    filled = {name: value.format(hris_url=sims.hris_url) for name, value in auth.items()}
    if "type" in auth:
        data["hris"]["auth"] = filled
    else:
        data["hris"]["auth"].update(filled)

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


@pytest.mark.parametrize("sims", [{**FOUR, "target": "successfactors"}], indirect=True)
def test_successfactors_upserts_each_entity_in_order_once(sims: Sims, db_url: str) -> None:
    report = run_sync(sims.settings(db_url))

    assert report.ok and report.succeeded == 4
    entities = sims.hris.entities
    assert {name: len(kept) for name, kept in entities.items()} == {
        "PerPerson": 4, "EmpEmployment": 4, "EmpJob": 4, "PerPersonal": 4, "PerEmail": 4,
        "PerPhone": 4,
    }  # fmt: skip
    assert sims.hris.calls["post"] == 24  # six upserts per hire, none repeated
    assert all(key.startswith("PerPerson/personIdExternal=PU") for key in sims.hris.records)


@pytest.mark.parametrize("sims", [{**FOUR, "target": "successfactors"}], indirect=True)
def test_a_record_refused_inside_a_200_parks_the_offer_with_sap_message_scrubbed(
    sims: Sims, db_url: str, captured_logs: Any
) -> None:
    settings = sims.settings(db_url, sync={"circuit_breaker_failures": 100})
    sims.hris.refuse_entities = {"PerEmail"}

    report = run_sync(settings)

    assert report.parked == 4 and report.succeeded == 0
    assert sum(sims.pageup.processed.values()) == 0, "a 200 alone is not success"
    state = ledger_states(settings)[str(sims.samples[0].offer_id)]
    assert state.parked_at is not None and state.stage == "post:email"
    assert state.http_status == 200
    assert "HTTP 200 but the record was refused: PerEmail was refused" in state.last_error
    email = sims.samples[0].offer["Applicant"]["Email"].lower()
    assert "[email]" in state.last_error and email not in state.last_error
    assert email not in captured_logs.getvalue()
    assert len(sims.hris.entities["PerPersonal"]) == 4 and "PerPhone" not in sims.hris.entities


@pytest.mark.parametrize("sims", [{**FOUR, "target": "successfactors"}], indirect=True)
def test_a_picklist_option_the_tenant_lacks_parks_the_offer_with_sap_message(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This tenant's ecEmailType picklist has other option ids than the map's lookup table.
    monkeypatch.setitem(successfactors.PICKLISTS, "emailType", {"90001", "90002"})
    settings = sims.settings(db_url, sync={"circuit_breaker_failures": 100})

    report = run_sync(settings)

    assert report.parked == 4 and report.succeeded == 0
    assert sum(sims.pageup.processed.values()) == 0
    state = ledger_states(settings)[str(sims.samples[0].offer_id)]
    assert state.stage == "post:email" and state.parked_at is not None
    assert "Invalid value for emailType: no picklist option" in state.last_error
    assert "PerEmail" not in sims.hris.entities and len(sims.hris.entities["PerPersonal"]) == 4


@pytest.mark.parametrize("sims", [{**FOUR, "target": "successfactors"}], indirect=True)
def test_a_crash_after_an_upsert_before_its_record_resends_it_and_the_keys_keep_one(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One offer at a time; on PostgreSQL a crashed run's claims hold until their lease expires.
    settings = sims.settings(db_url, sync={"concurrency": 1, "lease_seconds": 0.001})
    real = Ledger.record_step
    crashed: list[str] = []

    def record_then_crash(
        self: Ledger, source: str, offer_id: str, target: str, step: str, **kw: Any
    ) -> None:
        if step == "job" and kw["status"] == "done" and not crashed:
            crashed.append(offer_id)
            raise Crash  # SuccessFactors upserted the EmpJob; we never recorded it
        real(self, source, offer_id, target, step, **kw)

    monkeypatch.setattr(Ledger, "record_step", record_then_crash)
    with pytest.raises(Crash):
        run_sync(settings)
    monkeypatch.setattr(Ledger, "record_step", real)
    posts_before = sims.hris.calls["post"]
    assert posts_before == 3, "person, employment, job: the crash came after the job's upsert"

    report = run_sync(settings)

    assert report.ok and report.succeeded == 4
    assert sims.hris.calls["idempotent_replay"] == 0, "SuccessFactors replays no key"
    # The crashed offer's job was sent again (its upsert found the same key), then its
    # personal, email and phone: 4 upserts, plus 6 for each offer never tried.
    assert sims.hris.calls["post"] - posts_before == 4 + 6 * 3
    assert {name: len(kept) for name, kept in sims.hris.entities.items()} == {
        "PerPerson": 4, "EmpEmployment": 4, "EmpJob": 4, "PerPersonal": 4, "PerEmail": 4,
        "PerPhone": 4,
    }  # fmt: skip
    assert all(count == 1 for count in sims.hris.external_ids().values())


@pytest.mark.parametrize("sims", [{**FOUR, "target": "successfactors"}], indirect=True)
def test_successfactors_bearer_token_is_accepted_too(sims: Sims, db_url: str) -> None:
    data = sims.settings_data(db_url)
    data["hris"]["auth"] = {
        "type": "oauth2", "token_url": f"{sims.hris_url}/oauth/token",
        "client_id": sims.hris.client_id, "client_secret": sims.hris.client_secret,
    }  # fmt: skip

    report = run_sync(Settings(**data))

    assert report.ok and len(sims.hris.records) == 4


@pytest.mark.parametrize("sims", [{**FOUR, "target": "employmenthero"}], indirect=True)
def test_employment_hero_updates_an_employee_that_already_has_the_external_id(
    sims: Sims, db_url: str
) -> None:
    existing = str(sims.samples[0].offer_id)
    sims.hris.store({"externalId": existing, "firstName": "Earlier"}, existing, record_id="1000")

    report = run_sync(sims.settings(db_url))

    assert report.ok and report.succeeded == 4
    assert sims.hris.calls["find"] == 4 and sims.hris.calls["put"] == 1
    assert sims.hris.calls["post"] == 3 and len(sims.hris.records) == 4
    assert sims.hris.records["1000"]["taxFileNumber"]  # the update carried the whole record
    assert hris_ids(sims, db_url)[existing] == "1000"
