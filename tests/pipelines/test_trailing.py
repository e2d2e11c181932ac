"""The record that an offer was marked processed is made while its lane goes on."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
from sqlalchemy.exc import OperationalError

from tests.conftest import Sims
from tests.pipelines.test_offers import ledger_states, run_sync
from worker.pipelines.trailing import Trailing, Write
from worker.runtime import offer_worker
from worker.store.ledger import LeaseLost, Ledger


def test_a_lane_takes_its_next_offer_while_the_last_ones_record_commits(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lane, offers claimed two at a time: the first offer's "processed" record is held
    in the store's thread until the second offer is fetched. A lane that waited for the
    record before taking its next offer would never fetch it: the hold would time out."""
    first, second = (str(sample.offer_id) for sample in sims.samples[:2])
    second_fetched = threading.Event()
    sims.pageup.on_fetch = lambda offer_id: second_fetched.set() if offer_id == second else None
    held: list[bool] = []
    record_processed = Ledger.record_processed

    def held_until_the_next_fetch(self: Ledger, source: str, offer_id: str, *, owner: str) -> None:
        if offer_id == first:
            held.append(second_fetched.wait(timeout=20))
        record_processed(self, source, offer_id, owner=owner)

    monkeypatch.setattr(Ledger, "record_processed", held_until_the_next_fetch)
    settings = sims.settings(db_url, sync={"concurrency": 1})

    report = run_sync(settings)

    assert held == [True], "the second offer was fetched while the first's record waited"
    assert report.ok and report.succeeded == len(sims.samples)
    assert ledger_states(settings)["_counts"].get("processed") == len(sims.samples)
    assert sum(sims.pageup.processed.values()) == len(sims.samples)


def test_a_failed_processed_record_is_written_again_so_the_run_ends(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database blinks as the first offer's "processed" record is written: the record is
    made again after a pause. Given up, the offer would count as in flight for as long as its
    worker lives, and its run would never end (the run below is bounded to fail instead)."""
    first = str(sims.samples[0].offer_id)
    blinked: list[str] = []
    record_processed = Ledger.record_processed

    def blinking(self: Ledger, source: str, offer_id: str, *, owner: str) -> None:
        if offer_id == first and not blinked:
            blinked.append(offer_id)
            raise OperationalError("UPDATE offers", {}, Exception("database is locked"))
        record_processed(self, source, offer_id, owner=owner)

    monkeypatch.setattr(Ledger, "record_processed", blinking)
    settings = sims.settings(db_url)

    async def go() -> Any:
        async with offer_worker(settings) as worker:
            with structlog.testing.capture_logs() as logs:
                (report,) = await asyncio.wait_for(worker.run_once(), timeout=60)
            return report, logs

    report, logs = asyncio.run(go())

    assert blinked == [first]
    assert report.ok and report.succeeded == len(sims.samples)
    assert ledger_states(settings)["_counts"].get("processed") == len(sims.samples)
    retried = [log for log in logs if log["event"] == "offer_processed_record_retried"]
    assert [log["error"] for log in retried] == ["OperationalError"]


def test_trailing_writes_keep_their_source_busy_until_they_end_and_say_why_they_failed() -> None:
    async def go() -> tuple[list[str], list[bool], list[MutableMapping[str, Any]], int]:
        loop = asyncio.get_running_loop()
        trailing, ended = Trailing(retry_delays=(0.0,)), list[str]()
        trailing.on_done(ended.append)
        tries = Counter[str]()

        def write(outcome: BaseException | None, name: str) -> Write:
            def submit() -> asyncio.Future[Any]:
                tries[name] += 1
                future: asyncio.Future[Any] = loop.create_future()
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)
                return future

            return submit

        with structlog.testing.capture_logs() as logs:
            trailing.add("au", write(None, "ok"))
            trailing.add("au", write(LeaseLost("offer 1 of au is no longer claimed"), "lost"))
            trailing.add("nz", write(OSError("disk full"), "broken"))
            busy = [trailing.busy("au"), trailing.busy("nz"), trailing.busy("uk")]
            await trailing.settle()
            busy += [trailing.busy("au"), trailing.busy("nz")]
        return ended, busy, logs, tries["broken"] * 100 + tries["lost"] * 10 + tries["ok"]

    ended, busy, logs, tries = asyncio.run(go())
    assert busy == [True, True, False, False, False]
    assert sorted(ended) == ["au", "au", "nz"]
    assert tries == 211, "the broken write was tried twice, the others once"
    events = sorted((log["event"], log.get("error")) for log in logs)
    assert events == [("offer_lease_lost", None), ("offer_processed_not_recorded", "OSError"),
                      ("offer_processed_record_retried", "OSError")]  # fmt: skip
