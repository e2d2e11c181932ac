"""The error log for PageUp support: every failed PageUp call, against the simulator."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from tests.conftest import Sims
from tests.pipelines.test_offers import ledger_states, run_sync
from tests.pipelines.test_reliability import hirebridge
from worker.remote.http import FailedExchange, Reply
from worker.runtime import open_store
from worker.settings import DatabaseSettings, ErrorLogSettings, Settings
from worker.store.db import create_store_engine, migrate
from worker.store.errorlog import ErrorLog, FailedCall
from worker.store.thread import StoreThread
from worker.support.errorlog import PageUpErrors, pageup_messages, request_id

NAMES = ("X-Request-Id", "X-Correlation-Id")


def logged(settings: Settings) -> list[FailedCall]:
    engine = open_store(settings)
    try:
        return ErrorLog(engine).since(datetime.now(UTC) - timedelta(hours=1))
    finally:
        engine.dispose()


def test_a_refused_offer_is_logged_with_its_route_status_try_messages_and_request_id(
    sims: Sims, db_url: str
) -> None:
    locked, unpositioned = (str(s.offer_id) for s in sims.samples[:2])
    sims.pageup.refuse_offer[locked] = (409, {"Message": "Offer is locked by another process"})
    sims.pageup.refuse_offer[unpositioned] = (
        422, [{"message": "Offer has no position", "field": "PositionId"}],
    )  # fmt: skip
    settings = sims.settings(db_url)

    report = run_sync(settings)

    assert report.parked == 2 and report.succeeded == 10
    rows = {row.offer_id: row for row in logged(settings)}
    assert set(rows) == {locked, unpositioned}
    first = rows[locked]
    assert (first.source, first.method, first.route, first.stage) == (
        "pageup", "GET", "offers/{offer_id}", "fetch_offer",
    )  # fmt: skip
    assert (first.status, first.attempt) == (409, 1)
    assert first.messages == "Offer is locked by another process"  # PageUp's {"Message"} shape
    assert rows[unpositioned].messages == "PositionId: Offer has no position"  # [{"message"}]
    assert re.fullmatch(r"req-\d{6}-get_offer", first.request_id or "")
    assert 0 <= first.duration_ms < 5000
    assert first.at <= datetime.now(UTC)


def test_retried_503s_are_each_logged_with_their_try(sims: Sims, db_url: str) -> None:
    sims.pageup.faults.error_rate = 0.25
    settings = sims.settings(db_url)

    run_sync(settings)

    rows = logged(settings)
    assert len(rows) == sims.pageup.injected["503"] > 0
    assert {row.status for row in rows} == {503}
    assert {row.messages for row in rows} == {"An error has occurred."}
    assert {row.attempt for row in rows} >= {1, 2}  # a retried call names each try
    assert all(row.route in ("offers", "offers/{offer_id}", "offers/{offer_id}/onboardingform",
                             "applications/{application_id}/applicationForm",
                             "offers/{offer_id}/process") for row in rows)  # fmt: skip


def test_a_refused_token_is_logged_without_the_secret(sims: Sims, db_url: str) -> None:
    data = sims.settings_data(db_url)
    data["pageup"]["client_secret"] = "a-revoked-secret-4242"
    settings = Settings(**data)

    assert run_sync(settings).halted

    (row,) = logged(settings)
    assert (row.method, row.route, row.stage, row.status) == (
        "POST",
        "/connect/token",
        "token",
        401,
    )
    assert row.messages == "invalid_client" and row.offer_id is None
    assert "a-revoked-secret" not in str(row)


def test_pageup_that_cannot_be_reached_is_logged_without_a_status(sims: Sims, db_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nobody listens there
    data = sims.settings_data(db_url)
    data["pageup"]["token_url"] = f"http://127.0.0.1:{port}/connect/token"
    settings = Settings(**data)

    assert run_sync(settings).halted

    rows = logged(settings)
    # Every exchange: the token's own three tries, within each of the API call's three.
    assert [row.attempt for row in rows] == [1, 2, 3] * 3
    assert {(row.status, row.messages) for row in rows} == {
        (None, f"cannot connect to 127.0.0.1:{port}: connection refused")
    }


def test_a_log_that_cannot_be_written_does_not_fail_an_offer(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any) -> None:
        raise RuntimeError("the error log table is locked")

    monkeypatch.setattr(ErrorLog, "add", refuse)
    sims.pageup.faults.error_rate = 0.2
    labels = {"spool": "pageup_errors"}
    dropped = REGISTRY.get_sample_value("hirebridge_spool_dropped_total", labels) or 0
    # Eight tries a call: a call failing all of them (0.2**8) would fail the offer by chance.
    retry = {"attempts": 8, "backoff_initial_seconds": 0.0, "backoff_max_seconds": 0.01}
    settings = sims.settings(db_url, pageup={"retry": retry}, sync={"max_attempts": 20})

    report = run_sync(settings)

    assert report.ok and report.succeeded == 12
    assert ledger_states(settings)["_counts"] == {"processed": 12}
    after = REGISTRY.get_sample_value("hirebridge_spool_dropped_total", labels) or 0
    assert after - dropped == sims.pageup.injected["503"] > 0


def store_engine(url: str) -> Engine:
    engine = create_store_engine(DatabaseSettings(url=url))
    migrate(engine)
    return engine


def failure(status: int = 503) -> FailedExchange:
    return FailedExchange("GET", "offers", "list_offers", status, 1, 0.012, None, "HTTP 503")


def test_failed_calls_are_queued_at_once_and_written_in_one_batch(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording costs the failing call a list append: with the store's thread busy, a
    hundred failures are recorded without waiting, then written together."""
    engine = store_engine(db_url)
    store = StoreThread()
    batches: list[int] = []
    released = threading.Event()
    real_add = ErrorLog.add

    def add(log: ErrorLog, calls: list[FailedCall]) -> None:
        batches.append(len(calls))
        real_add(log, calls)

    monkeypatch.setattr(ErrorLog, "add", add)

    async def go() -> None:
        errors = PageUpErrors(engine, store, ErrorLogSettings())
        busy = asyncio.ensure_future(store.call(released.wait, 5))
        observe = errors.observer("pageup")
        for _ in range(100):
            observe(failure())  # returns at once although the store's thread is busy
        assert batches == []
        released.set()
        await busy
        await errors.drain()

    try:
        asyncio.run(go())
        assert batches == [100]
        assert len(ErrorLog(engine).since(datetime.now(UTC) - timedelta(minutes=1))) == 100
    finally:
        store.close()
        engine.dispose()


def test_rows_older_than_the_retention_are_purged(db_url: str) -> None:
    engine = store_engine(db_url)
    now = datetime.now(UTC)
    row = FailedCall(now, "pageup", "GET", "offers", "list_offers", 503, 1, None, None, 5, None)
    log = ErrorLog(engine)
    log.add([row, FailedCall(now - timedelta(days=91), *_rest(row)),
             FailedCall(now - timedelta(days=89), *_rest(row))])  # fmt: skip
    try:
        assert PageUpErrors(engine, StoreThread(), ErrorLogSettings()).purge(now) == 1
        assert len(log.since(now - timedelta(days=365))) == 2
    finally:
        engine.dispose()


def _rest(row: FailedCall) -> tuple[Any, ...]:
    return (row.source, row.method, row.route, row.stage, row.status, row.attempt,
            row.messages, row.request_id, row.duration_ms, row.offer_id)  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ({"X-Request-Id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
         "0f8fad5b-d9cb-469f-a165-70867728950e"),
        ({"X-Correlation-Id": "abc123"}, "abc123"),  # the second name, when the first is absent
        ({"X-Request-Id": "123456782"}, "[number]"),  # digits only: it may be a tax file number
        ({"X-Request-Id": "jo@example.org"}, None),  # not an id's shape
        ({"X-Request-Id": "a b"}, None),
        ({"X-Request-Id": "x" * 129}, None),
        ({"X-Other": "abc"}, None),
    ],
)  # fmt: skip
def test_a_request_id_is_kept_only_when_it_looks_like_one(
    headers: dict[str, str], kept: str | None
) -> None:
    assert request_id(httpx.Headers(headers), NAMES) == kept


def _reply(body: bytes, headers: dict[str, str] | None = None) -> Reply:
    return Reply(400, httpx.Headers(headers or {}), body, "pageup", "fetch_offer")


@pytest.mark.parametrize(
    ("body", "headers", "kept"),
    [
        (b'{"Message": "Offer is locked"}', None, "Offer is locked"),
        (b'[{"message": "must be a date", "field": "StartDate"}, {"message": "too long"}]',
         None, "StartDate: must be a date; too long"),
        # Only PageUp's documented keys are read: nothing else of a body, and no header.
        (b'{"Name": "Jane Citizen", "detail": "Jane Citizen"}', None, None),
        (b'[{"FirstName": "Jane"}]', None, None),
        (b"", {"X-Error-Message": "Jane Citizen is locked"}, None),
        (b"<html>Jane Citizen</html>", None, None),
        (b'{"Message": ""}', None, None),
        # What a message may quote back: values, dates in words, amounts, numbers, emails.
        (b'{"Message": "\'Jane Citizen\' born 5 June 1987 earns $85,000.00 (jo@example.org)"}',
         None, "[value] born [date] earns [amount] ([email])"),
        (b'{"Message": "TFN 123 456 782 and salary 120,500 refused"}', None,
         "TFN [number] and salary [amount] refused"),
    ],
)  # fmt: skip
def test_only_pageups_own_messages_are_kept_and_strictly_scrubbed(
    body: bytes, headers: dict[str, str] | None, kept: str | None
) -> None:
    assert pageup_messages(_reply(body, headers)) == kept


def test_a_mark_refused_to_an_operator_is_logged_too(
    sims: Sims, db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url)))
    sims.hris.faults.error_rate = 1.0
    settings = sims.settings(db_url, sync={"max_attempts": 5, "circuit_breaker_failures": 100})
    run_sync(settings)
    del sims.pageup.offers["900105"]  # gone from PageUp: its mark answers 404

    marked = hirebridge(config, "skip", "900105", "--reason", "entered by hand",
                        "--mark-processed")  # fmt: skip

    assert marked.returncode == 1 and "PageUp refused" in marked.stderr
    (row,) = [r for r in logged(settings) if r.stage == "mark_processed"]
    assert (row.method, row.route, row.status, row.messages) == (
        "POST", "offers/{offer_id}/process", 404, "Offer not found",
    )  # fmt: skip


def test_a_refused_listing_is_logged_with_pageups_message(sims: Sims, db_url: str) -> None:
    sims.pageup.faults.rate_limit_every = 1
    sims.pageup.faults.retry_after = None
    settings = sims.settings(db_url)

    assert run_sync(settings).halted

    (row,) = logged(settings)
    assert (row.method, row.route, row.stage, row.status, row.messages, row.offer_id) == (
        "GET", "offers", "list_offers", 429, "Daily rate limit exceeded", None,
    )  # fmt: skip
