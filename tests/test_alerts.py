"""Sentry alerts against a fake ingest on loopback that records every envelope."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from tests.conftest import FakeIngest, Sims
from tests.pipelines.test_offers import AREA
from worker import alerts
from worker.remote.http import route_of
from worker.runtime import offer_worker
from worker.service.runner import Service
from worker.settings import SentrySettings, Settings
from worker.sinks.http import HttpSink


@pytest.mark.parametrize("sims", [{"offers": 6, "missing_tfn": frozenset({0})}], indirect=True)
def test_failures_and_check_ins_reach_sentry_grouped_and_without_pii(
    sims: Sims, ingest: tuple[FakeIngest, str], tmp_path: Any
) -> None:
    fake, dsn = ingest
    sims.hris.faults.error_rate = 1.0
    settings = sims.settings(
        f"sqlite:///{tmp_path / 's.sqlite'}",
        sentry={"dsn": dsn, "environment": "test"},
        sync={"circuit_breaker_failures": 100},
    )
    assert alerts.init_sentry(settings.sentry)

    async def one_scheduled_run(settings: Settings) -> None:
        async with offer_worker(settings) as worker:
            lanes = asyncio.create_task(worker.pool.run())
            await asyncio.gather(*await Service(settings, worker).take_runs())
            worker.pool.stop()
            await lanes

    asyncio.run(one_scheduled_run(settings))
    alerts.flush()

    events = fake.of("event")
    assert len(events) == 6
    fingerprints = Counter(tuple(event["fingerprint"]) for event in events)
    assert fingerprints == {
        ("offer-failed", "post", "retriable", "hris"): 5,
        ("offer-failed", "map", "mapping", "none"): 1,
    }
    posted = next(e for e in events if e["tags"]["stage"] == "post")
    assert posted["tags"]["source"] == "pageup" and posted["tags"]["target"] == "hris"
    assert posted["tags"]["http_status"] == "503"
    assert posted["tags"]["remote_system"] == "hris" and posted["tags"]["offer_id"].startswith("9")
    assert posted["environment"] == "test" and posted["release"].startswith("hirebridge@")
    assert "HTTP 503" in posted["contexts"]["failure"]["message"]

    check_ins = fake.of("check_in")
    assert [c["status"] for c in check_ins] == ["in_progress", "ok"]
    assert check_ins[0]["monitor_slug"] == "hirebridge-offer-sync"
    assert check_ins[0]["monitor_config"]["schedule"] == {"type": "interval", "value": 5,
                                                          "unit": "minute"}  # fmt: skip
    assert check_ins[1]["check_in_id"] == check_ins[0]["check_in_id"]

    envelope_header = json.loads(fake.raw[0].split(b"\n")[0])
    assert envelope_header["trace"]["release"].startswith("hirebridge@")
    everything = b"".join(fake.raw).decode("utf-8", "replace")
    for sample in sims.samples:
        for value in (sample.offer["Applicant"]["Email"], sample.offer["Applicant"]["LastName"],
                      *(str(a["Answer"]) for a in sample.onboarding["Answers"]
                        if a["QuestionID"] not in AREA)):  # fmt: skip
            assert value not in everything
    assert sims.pageup.client_secret not in everything


@pytest.mark.parametrize("sims", [{"offers": 6, "missing_tfn": frozenset({0})}], indirect=True)
def test_a_failed_offer_carries_its_own_remote_calls_as_breadcrumbs_and_nothing_else(
    sims: Sims, ingest: tuple[FakeIngest, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, dsn = ingest
    sims.hris.faults.error_rate = 1.0  # every post answers 503, three tries each
    settings = sims.settings(
        f"sqlite:///{tmp_path / 's.sqlite'}",
        sentry={"dsn": dsn},
        sync={"circuit_breaker_failures": 100, "concurrency": 3},
    )
    # The first three posts wait for each other: three offers are surely in flight at once.
    together, real_deliver, waits = asyncio.Barrier(3), HttpSink.deliver, [0]

    async def deliver_together(self: HttpSink, payload: Any, key: str, **kw: Any) -> Any:
        waits[0] += 1
        if waits[0] <= 3:
            await together.wait()
        return await real_deliver(self, payload, key, **kw)

    monkeypatch.setattr(HttpSink, "deliver", deliver_together)
    assert alerts.init_sentry(settings.sentry)

    async def run(settings: Settings) -> None:
        async with offer_worker(settings) as worker:
            await worker.run_once()

    asyncio.run(run(settings))
    alerts.flush()

    paths = settings.sources["pageup"].paths
    fetches = sorted(
        ("pageup", "GET", path, 200, 1)
        for path in (paths.offer, paths.onboarding_form, paths.application_form)
    )
    posts = [("hris", "POST", route_of(settings.targets["hris"].url), 503, n) for n in (1, 2, 3)]
    events = fake.of("event")
    assert len(events) == 6 and waits[0] == 5
    for event in events:
        crumbs = event["breadcrumbs"]["values"]
        assert {(c["type"], c["category"]) for c in crumbs} == {("http", "remote_call")}
        calls = [(c["data"]["system"], c["data"]["method"], c["data"]["url"],
                  c["data"]["status_code"], c["data"]["attempt"]) for c in crumbs]  # fmt: skip
        assert sorted(calls[:3]) == fetches, event["tags"]["offer_id"]
        assert calls[3:] == ([] if event["tags"]["stage"] == "map" else posts)
        assert all(c["data"]["duration_ms"] >= 0 for c in crumbs)
        assert all(c["level"] == ("error" if c["data"]["status_code"] == 503 else "info")
                   for c in crumbs)  # fmt: skip
        text = json.dumps(crumbs)
        for noise in ("PRAGMA", "SELECT", "INSERT", "127.0.0.1", "http://", "9001", "Bearer"):
            assert noise not in text
    everything = b"".join(fake.raw).decode("utf-8", "replace")
    assert sims.pageup.client_secret not in everything
    for sample in sims.samples:
        assert sample.offer["Applicant"]["Email"] not in everything
        assert sample.offer["Applicant"]["LastName"] not in everything


def test_before_send_scrubs_values_and_secret_keys() -> None:
    event = {
        "message": "mia@example.org has TFN 123 456 782",
        "extra": {"api_key": "k", "items": ["call 0412 345 678"]},
        "tags": {"offer_id": "900101"},
        "timestamp": "2026-11-23T01:50:37Z",
        "breadcrumbs": {"values": [{"timestamp": 1.5, "message": "id 123456789"}]},
    }
    assert alerts.scrub_event(event, {}) == {
        "message": "[email] has TFN [number]",
        "extra": {"api_key": "[redacted]", "items": ["call [number]"]},
        "tags": {"offer_id": "900101"},
        "timestamp": "2026-11-23T01:50:37Z",
        "breadcrumbs": {"values": [{"timestamp": 1.5, "message": "id [number]"}]},
    }


def test_a_parked_application_and_an_unreadable_job_each_reach_sentry_once_without_pii(
    sims: Sims, ingest: tuple[FakeIngest, str], tmp_path: Any
) -> None:
    from tests.pipelines.test_applications import JOB, Rig

    fake, dsn = ingest
    rig = Rig(sims, f"sqlite:///{tmp_path / 's.sqlite'}")
    sims.hris.refuse_echoing.add("app-800006")  # the refusal quotes every value sent
    settings = rig.settings(job_ids=["999", str(JOB)]).model_copy(
        update={"sentry": SentrySettings(dsn=dsn, environment="test")}
    )
    assert alerts.init_sentry(settings.sentry)

    report = rig.run(settings)
    alerts.flush()

    assert (report.failed, len(report.job_problems)) == (1, 1)
    events = fake.of("event")
    assert sorted(tuple(e["fingerprint"]) for e in events) == [
        ("application-failed", "post", "permanent", "hris"),
        ("application-job-failed", "pageup", "999"),
    ]
    parked = next(e for e in events if e["fingerprint"][0] == "application-failed")
    assert {k: parked["tags"][k] for k in ("source", "target", "stage", "application_id",
                                           "parked", "remote_system")} == {
        "source": "pageup", "target": "hris", "stage": "post", "application_id": "800006",
        "parked": "true", "remote_system": "hris",
    }  # fmt: skip
    job = next(e for e in events if e["fingerprint"][0] == "application-job-failed")
    assert {k: job["tags"][k] for k in ("source", "job", "stage", "http_status")} == {
        "source": "pageup", "job": "999", "stage": "list_applications", "http_status": "404",
    }  # fmt: skip
    assert "no such job" in job["contexts"]["failure"]["reason"]
    everything = b"".join(fake.raw).decode("utf-8", "replace")
    for applicant in rig.sim.applicants.values():
        for key in ("FirstName", "LastName", "Email", "Phone"):
            assert str(applicant[key]) not in everything, key
    assert sims.pageup.client_secret not in everything
    assert str(sims.hris.api_key) not in everything
