"""Retries across runs, parking and replay, the circuit breaker, replicas, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import PG_URL, Sims
from tests.pipelines.test_offers import ledger_states, run_sync
from worker.runtime import Worker, offer_worker, open_store
from worker.settings import DatabaseSettings
from worker.simulators.sample import make_offers
from worker.store.db import create_store_engine, one_process_only

FAST = {"retry_backoff_initial_seconds": 0, "circuit_breaker_failures": 100}


def hirebridge(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(config), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_transient_failure_waits_for_its_next_attempt(sims: Sims, db_url: str) -> None:
    sims.hris.faults.error_rate = 1.0
    slow = {"retry_backoff_initial_seconds": 3600, "circuit_breaker_failures": 100}
    first = run_sync(sims.settings(db_url, sync=slow))
    assert first.failed == 12 and first.parked == 0
    sims.hris.faults.error_rate = 0.0
    posts = sims.hris.calls["post"]

    waiting = run_sync(sims.settings(db_url, sync=slow))

    assert waiting.not_due == 12 and sims.hris.calls["post"] == posts
    state = ledger_states(sims.settings(db_url))["900101"]
    assert state.next_attempt_at is not None and state.parked_at is None


def test_offers_park_after_max_attempts_and_an_admin_replays_them(
    sims: Sims, db_url: str, tmp_path: Path
) -> None:
    sims.hris.faults.error_rate = 1.0
    settings = sims.settings(db_url, sync={**FAST, "max_attempts": 2})
    assert run_sync(settings).parked == 0
    assert run_sync(settings).parked == 12
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url, sync={**FAST, "max_attempts": 2})))

    parked = hirebridge(config, "parked")
    assert parked.returncode == 0
    assert parked.stdout.count("HTTP 503: temporarily unavailable") == 12
    assert run_sync(settings).not_due == 12, "parked offers wait for an admin"

    sims.hris.faults.error_rate = 0.0
    retried = hirebridge(config, "retry", "--all-parked", "--reason", "HRIS back", "--by", "ops")
    assert retried.returncode == 0 and retried.stdout.count("re-queued") == 12
    report = run_sync(settings)
    assert report.ok and report.succeeded == 12
    assert len(sims.hris.records) == 12


@pytest.mark.parametrize("sims", [{"offers": 3, "missing_tfn": frozenset({0})}], indirect=True)
def test_a_permanent_failure_parks_at_once_and_alerts_once(
    sims: Sims, db_url: str, captured_logs: object
) -> None:
    settings = sims.settings(db_url, sync=FAST)
    first, second = run_sync(settings), run_sync(settings)
    assert first.parked == 1 and second.not_due == 1
    events = [json.loads(line) for line in captured_logs.getvalue().splitlines()]  # type: ignore[attr-defined]
    parked = [e for e in events if e["event"] == "offer_parked"]
    assert len(parked) == 1 and parked[0]["offer_id"] == "900101"
    assert "'tax.taxFileNumber': required" in parked[0]["error"]


def test_skip_is_recorded_and_leaves_the_offer_in_pageup(
    sims: Sims, db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url)))
    sims.hris.faults.error_rate = 1.0
    run_sync(sims.settings(db_url, sync=FAST))

    skipped = hirebridge(
        config, "skip", "900104", "--reason", "hired twice in PageUp", "--by", "ops"
    )
    marked = hirebridge(config, "skip", "900105", "--reason", "entered by hand", "--mark-processed")

    assert skipped.returncode == 0 and "stays in PageUp's queue" in skipped.stdout
    assert marked.returncode == 0 and sims.pageup.processed["900105"] == 1
    assert sims.pageup.processed["900104"] == 0
    sims.hris.faults.error_rate = 0.0
    report = run_sync(sims.settings(db_url, sync=FAST))
    assert report.succeeded == 10 and "900104" not in sims.hris_counts()
    status = hirebridge(config, "status")
    assert "skipped         1" in status.stdout


def test_the_circuit_breaker_stops_burning_attempts_on_an_outage(sims: Sims, db_url: str) -> None:
    sims.hris.faults.error_rate = 1.0
    report = run_sync(sims.settings(db_url, sync={"concurrency": 1, "circuit_breaker_failures": 3}))
    assert (
        report.halted is not None and "hris looks down: 3 offers in a row failed" in report.halted
    )
    assert report.failed == 3 and sims.hris.calls["post"] == 3 * 3  # 3 offers x 3 tries each
    # The others were not even fetched: they wait for the HRIS to rest (its cooldown).
    assert sims.pageup.calls["get_offer"] == 3


@pytest.mark.parametrize("sims", [{"offers": 8}], indirect=True)
def test_bad_pageup_answers_fail_their_offer_with_a_reason(sims: Sims, db_url: str) -> None:
    kinds = ["html", "invalid_json", "non_utf8", "not_object", "huge"]
    for sample, kind in zip(sims.samples, kinds, strict=False):
        sims.pageup.corrupt[str(sample.offer_id)] = kind
    report = run_sync(sims.settings(db_url))
    assert report.succeeded == 3 and report.parked == 5
    states = ledger_states(sims.settings(db_url))
    reasons = [states[str(900101 + i)].last_error for i in range(5)]
    assert "text/html body, expected JSON" in reasons[0]
    assert "not valid JSON" in reasons[1]
    assert "not valid UTF-8" in reasons[2]
    assert "the offer document is a JSON string, not an object" in reasons[3]
    assert reasons[4] == "HTTP 200 body larger than 8 MiB"  # not "[number] bytes"


def test_source_documents_are_kept_only_when_asked_and_expire(sims: Sims, db_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select, update

    from worker.store.tables import source_documents

    run_sync(sims.settings(db_url))
    engine = open_store(sims.settings(db_url))

    def stored() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(source_documents)).scalar_one()
            )

    assert stored() == 0, "not stored by default"
    sims.pageup.load(make_offers(3, first_id=910001))
    keep = {"keep_source_documents_days": 7}
    run_sync(sims.settings(db_url, database=keep))
    assert stored() == 3
    with engine.begin() as conn:  # two of them are now eight days old
        old = datetime.now(UTC) - timedelta(days=8)
        conn.execute(
            update(source_documents)
            .where(source_documents.c.offer_id.in_(["910001", "910002"]))
            .values(stored_at=old)
        )
    run_sync(sims.settings(db_url, database=keep))
    assert stored() == 1
    engine.dispose()


def test_a_second_worker_process_on_one_sqlite_file_is_refused(sims: Sims, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(url)))
    engine = create_store_engine(DatabaseSettings(url=url))
    with one_process_only(engine):
        refused = hirebridge(config, "sync", "--once")
    assert refused.returncode == 2
    assert "another hirebridge process" in refused.stderr
    assert "use PostgreSQL for several replicas" in refused.stderr
    assert sims.pageup.calls.total() == 0


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.parametrize("sims", [{"offers": 300}], indirect=True)
@pytest.mark.parametrize("db_url", ["postgresql"] if PG_URL else [], indirect=True)
def test_three_replicas_post_and_mark_every_offer_once(
    sims: Sims, db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url, sync={"concurrency": 8})))
    # Slow enough that the run lasts while the other replicas start and join it.
    sims.pageup.faults.latency_seconds = sims.hris.faults.latency_seconds = 0.02
    marked_before_posted: list[str] = []
    sims.pageup.on_mark = lambda offer_id: (
        None if sims.hris.by_external_id[offer_id] else marked_before_posted.append(offer_id)
    )
    # Output to files, not pipes: a replica blocked on a full pipe while the test reads another
    # one stops beating, and the others would (rightly) take its run over.
    logs = [(tmp_path / f"out{n}.txt", tmp_path / f"err{n}.txt") for n in range(3)]
    with contextlib.ExitStack() as files:
        replicas = [
            subprocess.Popen(
                [sys.executable, "-m", "worker", "--config", str(config), "sync", "--once"],
                stdout=files.enter_context(out.open("w")),
                stderr=files.enter_context(err.open("w")),
            )
            for out, err in logs
        ]
        for replica in replicas:
            replica.wait(timeout=300)
    outputs = [(out.read_text(), err.read_text()) for out, err in logs]

    assert [replica.returncode for replica in replicas] == [0, 0, 0], outputs
    # One replica led each run; the others helped with its offers while it lasted.
    assert sum("was led by another worker" in out for out, _ in outputs) >= 1, outputs
    processed_by = [
        int(out.split("this worker processed ")[1].split()[0].rstrip(")"))
        if "this worker processed" in out else int(out.split("processed ")[1].split(",")[0])
        for out, _ in outputs
    ]  # fmt: skip
    assert sum(processed_by) == 300
    assert sum(1 for n in processed_by if n > 0) >= 2, "the replicas shared the work"
    assert Counter(sims.hris_counts().values()) == Counter({1: 300})
    assert Counter(sims.pageup.processed.values()) == Counter({1: 300})
    assert marked_before_posted == []


@pytest.mark.parametrize("sims", [{"offers": 6}], indirect=True)
def test_a_document_about_another_record_never_reaches_the_hris(sims: Sims, db_url: str) -> None:
    """PageUp answers offer 1 with offer 2's document, offer 3's form with offer 4's, and
    offer 5's application form with another application's: each parks naming both ids, nothing
    of it is posted or marked, and the offers whose documents were borrowed go through once."""
    ids = [str(sample.offer_id) for sample in sims.samples]
    apps = [str(sample.application_id) for sample in sims.samples]
    sims.pageup.misdirect = {
        ("offer", ids[0]): ids[1],
        ("onboarding", ids[2]): ids[3],
        ("application", apps[4]): apps[5],
    }
    settings = sims.settings(db_url)
    report = run_sync(settings)

    assert report.parked == 3 and report.succeeded == 3
    assert sims.hris_counts() == {ids[1]: 1, ids[3]: 1, ids[5]: 1}
    assert {k for k, v in sims.pageup.processed.items() if v} == {ids[1], ids[3], ids[5]}
    states = ledger_states(settings)
    assert states[ids[0]].last_error == (
        f"asked for offer {ids[0]}, PageUp answered with offer {ids[1]}'s document"
    )
    assert states[ids[0]].stage == "fetch_offer" and states[ids[0]].parked_at is not None
    assert f"offer {ids[2]}'s new-starter form, got offer {ids[3]}'s" in states[ids[2]].last_error
    assert f"got application {apps[5]}'s" in states[ids[4]].last_error


@pytest.mark.parametrize("sims", [{"offers": 4}], indirect=True)
def test_documents_of_the_wrong_shape_say_what_they_were(sims: Sims, db_url: str) -> None:
    ids = [str(sample.offer_id) for sample in sims.samples]
    sims.pageup.corrupt[ids[0]] = "null"
    sims.pageup.corrupt[ids[1]] = "array"
    sims.pageup.corrupt_onboarding[ids[2]] = "answers_object"
    settings = sims.settings(db_url)
    report = run_sync(settings)

    assert report.parked == 3 and report.succeeded == 1
    states = ledger_states(settings)
    assert states[ids[0]].last_error == "the offer document is JSON null, not an object"
    assert states[ids[1]].last_error == "the offer document is a JSON array of 1, not an object"
    assert states[ids[2]].last_error == (
        "the new-starter form's Answers is a JSON object, not a list"
    )


@pytest.mark.parametrize("sims", [{"offers": 7}], indirect=True)
def test_a_list_entry_without_an_id_is_counted_once_per_run_and_shown_in_status(
    sims: Sims, db_url: str, tmp_path: Path
) -> None:
    sims.pageup.junk_entries = [{"OfferAccepted": True, "Applications": {"PUReferenceID": 1}}]
    sims.pageup.faults.page_size = 3  # the run lists three times (3 + 3 + 1), then once more
    report = run_sync(sims.settings(db_url))
    assert report.succeeded == 7 and sims.pageup.calls["list_offers"] == 4
    assert report.invalid_entries == ["page 1 entry 4"] and not report.ok
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url)))
    status = hirebridge(config, "status")
    assert "unreadable list entries 1 (page 1 entry 4)" in status.stdout, status.stdout


def test_a_worker_whose_heartbeat_is_stale_sends_nothing_and_gives_its_offers_back(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past half the worker timeout without a heartbeat, the others may take this worker for
    dead and its offers for free: it starts no post and no mark. The next run sends each
    offer once, with the key recorded before the stale worker stopped."""
    monkeypatch.setattr(Worker, "may_act", lambda self: False)
    stale = run_sync(sims.settings(db_url, sync=FAST))
    assert stale.succeeded == 0 and stale.listed == 12
    assert sims.hris.calls["post"] == 0 and sum(sims.pageup.processed.values()) == 0
    left = [o for key, o in ledger_states(sims.settings(db_url)).items() if key != "_counts"]
    assert len(left) == 12 and all(o.lease_owner is None for o in left), "given back"
    monkeypatch.undo()

    fresh = run_sync(sims.settings(db_url, sync=FAST))
    assert fresh.succeeded == 12
    assert set(sims.hris_counts().values()) == {1} and sims.hris.calls["post"] == 12
    assert set(sims.pageup.processed.values()) == {1}


def test_may_act_follows_the_heartbeat(sims: Sims, db_url: str) -> None:
    settings = sims.settings(db_url, sync={"worker_timeout_seconds": 30})

    async def go() -> list[bool]:
        async with offer_worker(settings) as worker:
            seen = [worker.may_act()]
            worker._beaten = time.monotonic() - 15.5  # its beats failed for half the timeout
            seen.append(worker.may_act())
            await worker.beat()
            seen.append(worker.may_act())
            return seen

    assert asyncio.run(go()) == [True, False, True]
