"""The record that an offer was marked processed is made while its lane goes on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog

from tests.conftest import Sims
from tests.pipelines.test_offers import ledger_states, run_sync
from worker.pipelines.trailing import Trailing
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


def test_trailing_writes_keep_their_source_busy_until_they_end_and_say_why_they_failed() -> None:
    async def go() -> tuple[list[str], list[bool], list[MutableMapping[str, Any]]]:
        loop = asyncio.get_running_loop()
        trailing, ended = Trailing(), list[str]()
        trailing.on_done(ended.append)
        ok, lost, broken = loop.create_future(), loop.create_future(), loop.create_future()
        with structlog.testing.capture_logs() as logs:
            trailing.add("au", ok)
            trailing.add("au", lost)
            trailing.add("nz", broken)
            busy = [trailing.busy("au"), trailing.busy("nz"), trailing.busy("uk")]
            ok.set_result(None)
            lost.set_exception(LeaseLost("offer 1 of au is no longer claimed"))
            broken.set_exception(OSError("disk full"))
            await trailing.settle()
            busy += [trailing.busy("au"), trailing.busy("nz")]
        return ended, busy, logs

    ended, busy, logs = asyncio.run(go())
    assert busy == [True, True, False, False, False]
    assert sorted(ended) == ["au", "au", "nz"]
    events = sorted((log["event"], log.get("error")) for log in logs)
    assert events == [("offer_lease_lost", None), ("offer_processed_not_recorded", "OSError")]
