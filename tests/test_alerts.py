"""Sentry alerts against a fake ingest on loopback that records every envelope."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import Sims
from tests.pipelines.test_offers import AREA
from worker import alerts
from worker.runtime import offer_worker
from worker.service.runner import Service
from worker.settings import Settings
from worker.simulators.server import BackgroundServer


class FakeIngest:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.raw: list[bytes] = []

    def app(self) -> Starlette:
        async def envelope(request: Request) -> Response:
            body = await request.body()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            self.raw.append(body)
            lines = body.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if header.strip():
                    self.items.append((json.loads(header)["type"], json.loads(payload)))
            return JSONResponse({})

        return Starlette(routes=[Route("/api/{project}/envelope/", envelope, methods=["POST"])])

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [payload for item, payload in self.items if item == kind]


@pytest.fixture
def ingest() -> Iterator[tuple[FakeIngest, str]]:
    fake = FakeIngest()
    with BackgroundServer(fake.app()) as server:
        yield fake, f"{server.url.replace('http://', 'http://public@')}/42"
        sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: later tests send nothing


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
