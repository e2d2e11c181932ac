"""The offer sync against the simulators over loopback HTTP: outcomes, crashes, faults."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from typing import Any

import pytest

from tests.conftest import Sims
from worker.pipelines.delivery import idempotency_key
from worker.pipelines.source_run import RunReport
from worker.runtime import offer_worker, open_store
from worker.settings import Settings
from worker.sinks.http import HttpSink
from worker.sources.pageup import PageUpClient
from worker.store.ledger import Ledger, Status

MISSING_TFN = {"offers": 6, "missing_tfn": frozenset({2})}
# Suburb, state and postcode answers: not identifying alone, and a 4-digit postcode turns up
# inside timestamps by chance. The street address, TFN, bank and birth answers are checked.
AREA = {16, 17, 18}


class Crash(BaseException):
    """Stands for the process dying: the pipeline does not catch BaseException."""


def run_sync(settings: Settings) -> RunReport:
    """One run of the only source (``hirebridge sync --once``)."""

    async def go() -> RunReport:
        async with offer_worker(settings) as worker:
            (report,) = await worker.run_once()
            return report

    return asyncio.run(go())


def ledger_states(settings: Settings) -> dict[str, Any]:
    """The unfinished offers by id, and ``_counts``: offers by state as operators read it."""
    engine = open_store(settings)
    try:
        ledger = Ledger(engine)
        return {o.offer_id: o for o in ledger.unfinished(limit=1000)} | {"_counts": ledger.counts()}
    finally:
        engine.dispose()


def test_every_offer_is_posted_once_and_marked_processed_after(sims: Sims, db_url: str) -> None:
    posted_before_mark: list[bool] = []
    sims.pageup.on_mark = lambda offer_id: posted_before_mark.append(
        sims.hris.by_external_id[offer_id] == 1
    )
    settings = sims.settings(db_url)

    report = run_sync(settings)

    assert report.ok and report.succeeded == 12 and report.listed == 12
    assert sorted(sims.hris_counts()) == sorted(str(s.offer_id) for s in sims.samples)
    assert set(sims.hris_counts().values()) == {1}
    assert sum(sims.pageup.processed.values()) == 12
    assert posted_before_mark == [True] * 12
    assert ledger_states(settings)["_counts"] == {"processed": 12}
    # A second run finds an empty queue and does nothing.
    again = run_sync(settings)
    assert again.listed == 0 and sims.hris.calls["post"] == 12


@pytest.mark.parametrize("sims", [MISSING_TFN], indirect=True)
def test_missing_required_answer_fails_that_offer_only(sims: Sims, db_url: str) -> None:
    settings = sims.settings(db_url)

    report = run_sync(settings)

    failed = str(sims.samples[2].offer_id)
    assert report.failed == 1 and report.succeeded == 5 and not report.ok
    assert failed not in sims.hris_counts()
    assert sims.pageup.processed[failed] == 0
    state = ledger_states(settings)[failed]
    assert state.status == Status.FAILED and state.stage == "map"
    assert state.targets[0].parked_at is not None and state.parked_at is not None
    assert "tax.taxFileNumber" in state.last_error and "required" in state.last_error


def test_surprising_form_answers_park_the_offer_and_nothing_is_posted_or_marked(
    sims: Sims, db_url: str
) -> None:
    twice, verified = sims.samples[3], sims.samples[4]
    tfn = twice.onboarding["Answers"][0]
    other_tfn = "876543210" if tfn["Answer"] != "876543210" else "876543211"
    twice.onboarding["Answers"].append({**tfn, "Answer": other_tfn})
    account = next(a for a in verified.onboarding["Answers"] if a["QuestionID"] == 13)
    account_number = account["Answer"]
    account["Answer"] = {"Value": account_number, "Verified": True}
    settings = sims.settings(db_url)

    report = run_sync(settings)

    assert report.failed == 2 and report.succeeded == 10
    states = ledger_states(settings)
    for sample, named, values in (
        (twice, "question 11 is answered 2 times, with different answers",
         (tfn["Answer"], other_tfn)),
        (verified, "the answer to question 13 is an object", (account_number,)),
    ):  # fmt: skip
        offer_id = str(sample.offer_id)
        assert offer_id not in sims.hris_counts() and sims.pageup.processed[offer_id] == 0
        state = states[offer_id]
        assert state.status == Status.FAILED and state.stage == "map" and state.parked_at
        assert named in state.last_error
        assert not any(value in state.last_error for value in values)


def test_crash_after_hris_accepted_only_marks_on_restart(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tiny lease: on PostgreSQL the "crashed" worker's claim must have expired at restart.
    settings = sims.settings(db_url, sync={"concurrency": 1, "lease_seconds": 0.001})
    real_mark = PageUpClient.mark_processed

    async def crash_on_third(self: PageUpClient, offer_id: str) -> None:
        if sum(sims.pageup.processed.values()) == 2:
            raise Crash
        await real_mark(self, offer_id)

    monkeypatch.setattr(PageUpClient, "mark_processed", crash_on_third)
    with pytest.raises(Crash):
        run_sync(settings)
    assert len(sims.hris.records) == 3 and sum(sims.pageup.processed.values()) == 2
    assert ledger_states(settings)["_counts"]["posted"] == 1
    crashed = next(
        o
        for o in ledger_states(settings).values()
        if getattr(o, "targets", None) and o.targets[0].status == "posted"
    )

    monkeypatch.setattr(PageUpClient, "mark_processed", real_mark)
    report = run_sync(settings)

    assert report.ok and report.succeeded == 10
    assert sims.hris.calls["post"] == 12, "the posted offer must not be posted again"
    assert set(sims.hris_counts().values()) == {1}
    assert sims.pageup.processed[crashed.offer_id] == 1
    assert ledger_states(settings)["_counts"] == {"processed": 12}


def test_crash_during_hris_post_retries_with_the_same_key(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sims.settings(db_url, sync={"concurrency": 1, "lease_seconds": 0.001})
    real_deliver = HttpSink.deliver
    keys: list[str] = []

    async def deliver_then_crash(self: HttpSink, payload: Any, key: str, **kw: Any) -> Any:
        keys.append(key)
        result = await real_deliver(self, payload, key, **kw)
        if len(keys) == 1:
            raise Crash  # the HRIS stored it; we never learnt so
        return result

    monkeypatch.setattr(HttpSink, "deliver", deliver_then_crash)
    with pytest.raises(Crash):
        run_sync(settings)
    first = ledger_states(settings)
    posting = [o for o in first.values() if getattr(o, "targets", None)
               and o.targets[0].status == Status.POSTING]  # fmt: skip
    assert len(posting) == 1 and first["_counts"]["posting"] == 1

    report = run_sync(settings)

    assert report.ok and report.succeeded == 12
    assert keys.count(keys[0]) == 2
    assert keys[0] == idempotency_key("pageup", posting[0].offer_id, "hris")
    assert sims.hris.calls["idempotent_replay"] == 1
    assert len(sims.hris.records) == 12 and set(sims.hris_counts().values()) == {1}


def test_hris_timeout_after_storing_is_retried_without_duplicate(sims: Sims, db_url: str) -> None:
    sims.hris.faults.slow_rate = 0.5
    sims.hris.faults.slow_seconds = 1.5
    retry = {"attempts": 5, "backoff_initial_seconds": 0.0, "timeout_seconds": 0.5}
    settings = sims.settings(db_url, hris={"retry": retry})

    report = run_sync(settings)

    assert report.ok, report
    assert sims.hris.calls["idempotent_replay"] >= 1
    assert len(sims.hris.records) == 12 and set(sims.hris_counts().values()) == {1}


def test_failing_offers_do_not_hide_the_rest_of_a_capped_queue(sims: Sims, db_url: str) -> None:
    # The queue answers at most 4 offers per call and pages by number; the first 4 always fail.
    sims.pageup.faults.page_size = 4
    for sample in sims.samples[:4]:
        sample.onboarding["Answers"] = []
    paging = {"mode": "page_number", "page_size": 4}
    settings = sims.settings(db_url, pageup={"paging": paging})

    report = run_sync(settings)

    assert report.failed == 4 and report.succeeded == 8
    assert sum(sims.pageup.processed.values()) == 8


def test_unpaged_capped_queue_is_drained_round_by_round(sims: Sims, db_url: str) -> None:
    sims.pageup.faults.page_size = 5
    report = run_sync(sims.settings(db_url))
    assert report.ok and report.succeeded == 12
    assert sims.pageup.calls["list_offers"] == 4  # 5 + 5 + 2, then an empty queue


def test_transient_faults_and_revoked_tokens_are_absorbed(sims: Sims, db_url: str) -> None:
    sims.pageup.faults.error_rate = 0.1
    sims.hris.faults.error_rate = 0.1
    marks = 0

    def revoke_tokens_every_third_mark(_offer_id: str) -> None:
        nonlocal marks
        marks += 1
        if marks % 3 == 0:
            sims.pageup.tokens.clear()

    sims.pageup.on_mark = revoke_tokens_every_third_mark
    retry = {"attempts": 8, "backoff_initial_seconds": 0.0, "backoff_max_seconds": 0.01}
    # One offer at a time, so a revocation never lands between a refresh and its retry.
    settings = sims.settings(
        db_url, pageup={"retry": retry}, hris={"retry": retry}, sync={"concurrency": 1}
    )
    report = run_sync(settings)

    assert report.ok, report
    assert sims.pageup.calls["token"] >= 4
    assert sims.pageup.injected["503"] > 0
    assert len(sims.hris.records) == 12 and set(sims.hris_counts().values()) == {1}


def test_rate_limit_without_retry_after_halts_the_run(sims: Sims, db_url: str) -> None:
    sims.pageup.faults.rate_limit_every = 6
    sims.pageup.faults.retry_after = None
    report = run_sync(sims.settings(db_url, sync={"concurrency": 1}))
    assert report.halted is not None and "rate limit" in report.halted
    assert not report.ok
    assert report.succeeded + report.failed < 12, "no new offers after the daily limit"


def test_retry_after_is_honoured(sims: Sims, db_url: str) -> None:
    sims.pageup.faults.rate_limit_every = 7
    sims.pageup.faults.retry_after = "0.01"
    # One call at a time: a retried call is the next call, never another multiple of 7.
    report = run_sync(sims.settings(db_url, sync={"concurrency": 1}))
    assert report.ok and sims.pageup.injected["429"] > 0


def test_refused_credentials_halt_the_run(sims: Sims, db_url: str) -> None:
    settings = sims.settings(db_url, pageup={"client_secret": "wrong"})
    report = run_sync(settings)
    assert report.halted is not None
    assert report.halted == "pageup token failed: HTTP 401: invalid_client"
    assert sims.hris.calls["post"] == 0


def test_offer_action_type_id_is_sent_when_configured(sims: Sims, db_url: str) -> None:
    run_sync(sims.settings(db_url, pageup={"offer_action_type_id": 3}))
    assert sims.pageup.action_types == ["3"] * 12


@pytest.mark.parametrize("sims", [MISSING_TFN], indirect=True)
def test_no_pii_or_secret_in_any_log_line(
    sims: Sims, db_url: str, captured_logs: io.StringIO
) -> None:
    sims.hris.required = (*sims.hris.spec.required, "nonexistent")  # every post refused with 422
    run_sync(sims.settings(db_url))
    text = captured_logs.getvalue()
    assert "offer_parked" in text and "nonexistent" in text
    for line in text.splitlines():
        json.loads(line)
    secrets = [sims.pageup.client_secret, str(sims.hris.api_key)]
    pii = [
        value
        for sample in sims.samples
        for value in (
            sample.offer["Applicant"]["FirstName"] + " ",
            sample.offer["Applicant"]["Email"],
            *(
                str(a["Answer"])
                for a in sample.onboarding["Answers"]
                if a["QuestionID"] not in AREA
            ),
            str(sample.offer["Salary"]["Amount"]),
        )
    ]
    for value in secrets + pii:
        assert value not in text
    assert "access_token" not in text


@pytest.mark.parametrize("sims", [{"offers": 2}], indirect=True)
def test_an_unreachable_hris_is_named_in_the_stored_reason(
    sims: Sims, db_url: str, captured_logs: io.StringIO
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    settings = sims.settings(db_url, hris={"url": f"http://127.0.0.1:{port}/api/employees"})

    report = run_sync(settings)

    reason = f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert report.failed == 2 and sims.pageup.processed.total() == 0
    states = ledger_states(settings)
    assert {states[str(s.offer_id)].last_error for s in sims.samples} == {reason}
    failed = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    assert {e["error"] for e in failed if e["event"] == "offer_failed"} == {reason}
