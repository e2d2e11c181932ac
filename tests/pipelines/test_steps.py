"""Multi-step targets against the HRIS simulator: every step once, resume, upsert, crashes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import REPO, Sims
from tests.pipelines.test_offers import Crash, ledger_states, run_sync
from worker.runtime import open_store
from worker.settings import Settings
from worker.sinks.http import HttpSink
from worker.store.documents import DocumentLedger
from worker.store.ledger import Ledger

STEPS_MAP = REPO / "mappings" / "example_payroll_steps.yaml"
# lease_seconds: on PostgreSQL a crashed run's claims hold until they expire (SQLite frees them).
FAST = {"retry_backoff_initial_seconds": 0, "circuit_breaker_failures": 100, "concurrency": 1,
        "lease_seconds": 0.001}  # fmt: skip
SIX_ONE_WITHOUT_TFN = {"offers": 6, "missing_tfn": frozenset({2})}


def steps_settings(sims: Sims, db_url: str, **sync: Any) -> Settings:
    return sims.settings(
        db_url,
        hris={"url": f"{sims.hris_url}/api", "mapping": str(STEPS_MAP)},
        sync={**FAST, **sync},
    )


def kinds_of(sims: Sims, record_id: str) -> list[str]:
    return sorted(kind for kind, _ in sims.hris.children.get(record_id, []))


@pytest.mark.parametrize("sims", [SIX_ONE_WITHOUT_TFN], indirect=True)
def test_each_step_runs_once_with_the_first_steps_id(sims: Sims, db_url: str) -> None:
    settings = steps_settings(sims, db_url)

    report = run_sync(settings)

    assert report.succeeded == 5 and report.failed_offers == [str(sims.samples[2].offer_id)]
    assert len(sims.hris.records) == 5  # the offer without a TFN sent nothing at all
    for record_id in sims.hris.records:
        assert kinds_of(sims, record_id) == ["bank-accounts", "tax-declaration"]
        tax = dict(sims.hris.children[record_id])["tax-declaration"]
        assert tax["employeeId"] == record_id
    failed = ledger_states(settings)[str(sims.samples[2].offer_id)]
    assert "step 'tax_declaration': field 'taxFileNumber': required" in failed.last_error
    assert sum(sims.pageup.processed.values()) == 5


@pytest.mark.parametrize("sims", [{"offers": 3}], indirect=True)
def test_a_retry_resumes_at_the_first_step_that_failed(sims: Sims, db_url: str) -> None:
    settings = steps_settings(sims, db_url)
    sims.hris.faults.fail_next["tax-declaration"] = 3  # all 3 tries of the first offer's step

    first = run_sync(settings)

    first_offer = str(sims.samples[0].offer_id)
    assert first.failed_offers == [first_offer] and first.succeeded == 2
    state = ledger_states(settings)[first_offer]
    assert state.stage == "post:tax_declaration" and state.http_status == 503
    assert sims.pageup.processed[first_offer] == 0  # not marked: a step is missing
    posts_before = sims.hris.calls["post"]

    second = run_sync(settings)

    assert second.ok and second.succeeded == 1
    assert sims.hris.calls["post"] == posts_before  # the employee was not created again
    assert sims.hris.calls["post_bank-accounts"] == 3  # nor its bank account sent again
    assert len(sims.hris.records) == 3
    for record_id in sims.hris.records:
        assert kinds_of(sims, record_id) == ["bank-accounts", "tax-declaration"]
    assert sims.pageup.processed[first_offer] == 1


@pytest.mark.parametrize("sims", [{"offers": 2}], indirect=True)
def test_crash_after_a_step_was_accepted_resends_it_with_the_same_key(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = steps_settings(sims, db_url)
    real = Ledger.record_step
    crashed: list[str] = []

    def record_then_crash(
        self: Ledger, source: str, offer_id: str, target: str, step: str, **kw: Any
    ) -> None:
        if step == "bank_account" and kw["status"] == "done" and not crashed:
            crashed.append(offer_id)
            raise Crash  # the HRIS stored the bank account; we never recorded it
        real(self, source, offer_id, target, step, **kw)

    monkeypatch.setattr(Ledger, "record_step", record_then_crash)
    with pytest.raises(Crash):
        run_sync(settings)

    report = run_sync(settings)

    assert report.ok and report.succeeded == 2
    assert sims.hris.calls["idempotent_replay"] == 1  # the bank step, replayed, not re-created
    for record_id in sims.hris.records:
        assert kinds_of(sims, record_id) == ["bank-accounts", "tax-declaration"]
    assert len(sims.hris.records) == 2


@pytest.mark.parametrize("sims", [{"offers": 3}], indirect=True)
def test_an_existing_employee_is_found_and_updated_not_duplicated(sims: Sims, db_url: str) -> None:
    existing = str(sims.samples[1].offer_id)
    sims.hris.records["EMP-000001"] = {"externalId": existing, "firstName": "Placeholder"}

    report = run_sync(steps_settings(sims, db_url))

    assert report.ok and report.succeeded == 3
    assert sims.hris.calls["put"] == 1 and sims.hris.calls["find"] == 3
    assert len(sims.hris.records) == 3  # one found and updated, two created
    assert (
        sims.hris.records["EMP-000001"]["firstName"]
        == sims.samples[1].offer["Applicant"]["FirstName"]
    )
    assert kinds_of(sims, "EMP-000001") == ["bank-accounts", "tax-declaration"]


@pytest.mark.parametrize("sims", [{"offers": 1}], indirect=True)
def test_unknown_outcome_of_the_create_is_resolved_by_the_look_up(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HRIS here forgets idempotency keys (many do): the look-up alone prevents a duplicate."""
    settings = steps_settings(sims, db_url)
    real = HttpSink.deliver
    calls: list[str] = []

    async def create_then_crash(self: HttpSink, payload: Any, key: str, **kw: Any) -> Any:
        calls.append(kw.get("stage", ""))
        result = await real(self, payload, key, **kw)
        if len(calls) == 1:
            sims.hris.by_key.clear()
            raise Crash
        return result

    monkeypatch.setattr(HttpSink, "deliver", create_then_crash)
    with pytest.raises(Crash):
        run_sync(settings)

    report = run_sync(settings)

    assert report.ok
    assert calls[:2] == ["post:employee", "post:employee:update"]
    assert len(sims.hris.records) == 1 and sims.hris.calls["put"] == 1


def _steps_map_with_its_documents(folder: Any) -> Any:
    """The steps example with its commented ``documents:`` block switched on, as written."""
    lines = STEPS_MAP.read_text().splitlines()
    start = lines.index("# documents:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    path = folder / "steps_with_documents.yaml"
    path.write_text("\n".join(lines + block) + "\n")
    return path


@pytest.mark.parametrize("sims", [{"offers": 2}], indirect=True)
def test_the_steps_example_sends_documents_under_the_employee_steps_id(
    sims: Sims, db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = _steps_map_with_its_documents(tmp_path)
    settings = sims.settings(db_url, hris={"url": f"{sims.hris_url}/api", "mapping": str(mapping)},
                             sync=FAST)  # fmt: skip
    real_done = DocumentLedger.done
    crashed: list[str] = []

    def crash_once(self: DocumentLedger, ref: Any, **kw: Any) -> None:
        if not crashed:
            crashed.append(ref.document_id)
            raise Crash  # the HRIS kept the contract; we never recorded so
        real_done(self, ref, **kw)

    monkeypatch.setattr(DocumentLedger, "done", crash_once)
    with pytest.raises(Crash):
        run_sync(settings)
    monkeypatch.setattr(DocumentLedger, "done", real_done)
    report = run_sync(settings)

    assert report.ok and report.succeeded == 2
    engine = open_store(settings)
    try:
        ledger = Ledger(engine)
        employee_ids = {ledger.get("pageup", str(s.offer_id)).record_id for s in sims.samples}  # type: ignore[union-attr]
    finally:
        engine.dispose()
    # The files sit under the id the `employee` step returned, one of each per employee.
    assert set(sims.hris.files) == employee_ids == set(sims.hris.records)
    for record_id in employee_ids:
        kept = sims.hris.files[record_id]
        assert sorted(f["category"] for f in kept) == ["contract", "offer_letter"]
    # After the crash the contract was found by name and SHA-256 in the listing, not resent
    # (the generic flavour would replay the key, and counts a replay).
    assert sims.hris.calls["list_documents"] >= 1
    assert sims.hris.calls["idempotent_replay"] == 0
