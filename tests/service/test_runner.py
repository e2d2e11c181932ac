"""The running worker: map reload (SIGHUP, POST /-/reload), scheduled jobs, and a stop that
comes while the database hands out runs."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from tests.conftest import REPO, Sims
from worker.demo import simulator_settings
from worker.mapping.loader import load_field_map
from worker.runtime import offer_worker
from worker.service.runner import Service
from worker.settings import Settings
from worker.store.sources import RunTicket, SourceRow


def test_reload_refuses_a_map_with_a_key_given_twice_then_takes_the_fixed_one(
    tmp_path: Path,
) -> None:
    mapping = tmp_path / "map.yaml"
    shutil.copy(REPO / "mappings" / "example_hris.yaml", mapping)
    data = simulator_settings(
        "http://127.0.0.1:9", "http://127.0.0.1:9", f"sqlite:///{tmp_path / 's.sqlite'}",
        mapping=mapping,
    )  # fmt: skip
    settings = Settings(**data)

    async def reload_twice() -> tuple[tuple[bool, str], tuple[bool, str]]:
        async with offer_worker(settings) as worker:
            service = Service(settings, worker)
            text = mapping.read_text()
            mapping.write_text(text + "  email: offer.Applicant.Other\n")
            refused = await service.reload()
            mapping.write_text(text)
            return refused, await service.reload()

    (ok, problems), (ok_after, version) = asyncio.run(reload_twice())

    assert not ok
    lines = mapping.read_text().splitlines()
    first = next(n for n, line in enumerate(lines, 1) if line.startswith("  email:"))
    added = len(lines) + 1
    assert (
        f"{mapping}:{added}:3: duplicate key 'fields.email', first given at {mapping}:{first}:3"
        in problems
    )
    assert ok_after and version == f"hris {load_field_map(mapping).version}"


def test_a_reload_that_changes_notifications_or_the_error_log_says_they_need_a_restart(
    tmp_path: Path,
) -> None:
    data = simulator_settings(
        "http://127.0.0.1:9", "http://127.0.0.1:9", f"sqlite:///{tmp_path / 's.sqlite'}",
        mapping=REPO / "mappings" / "example_hris.yaml",
    )  # fmt: skip
    settings = Settings(**data)
    channels = {"hr": {"url": "json://127.0.0.1/x"}}
    changed = Settings(
        **{**data, "error_log": {"retention_days": 7}, "notifications": {"channels": channels}}
    )

    async def reload() -> tuple[bool, str]:
        async with offer_worker(settings) as worker:
            return await Service(settings, worker, reread=lambda: changed).reload()

    with structlog.testing.capture_logs() as logs:
        ok, _ = asyncio.run(reload())

    assert ok  # the maps and sources are swapped in; these two wait for the next start
    needing = {e["section"] for e in logs if e["event"] == "reload_needs_restart"}
    assert needing == {"notifications", "error_log"}


def test_notices_are_sent_by_a_job_of_their_own_and_old_rows_purged_hourly(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from worker.notices.channels import build_channels
    from worker.notices.notifier import Notifier
    from worker.store.attempts import AttemptHistory
    from worker.store.errorlog import ErrorLog, FailedCall
    from worker.store.tables import offer_attempts

    data = simulator_settings(
        "http://127.0.0.1:9", "http://127.0.0.1:9", f"sqlite:///{tmp_path / 's.sqlite'}",
        mapping=REPO / "mappings" / "example_hris.yaml",
        notifications={"channels": {"hr": {"url": "json://127.0.0.1:9/down"}}},
    )  # fmt: skip
    settings = Settings(**data)
    now = datetime.now(UTC)
    old, later = now - timedelta(days=120), now + timedelta(minutes=5)

    async def go() -> tuple[set[str], int, list[int], int]:
        async with offer_worker(settings) as worker:
            worker.notices.source_halted("pageup", "pageup rate limit reached", None)
            await worker.notices.drain()
            notifier = Notifier(
                worker.notices.notices, worker.store, build_channels(settings.notifications),
                settings.notifications, settings.notice_timezone, clock=lambda: later,
            )  # fmt: skip
            service = Service(settings, worker, notifier=notifier)
            jobs = {job.id for job in service._scheduler(asyncio.get_running_loop()).get_jobs()}
            await service.notify()  # the channel is down: recorded, not raised
            failures = [c.failures for c in worker.notices.notices.channels()]
            row = FailedCall(old, "pageup", "GET", "offers", "list_offers", 503, 1, None, None, 3,
                             None)  # fmt: skip
            await worker.store.call(ErrorLog(worker.engine).add, [row])
            attempt = {"source": "pageup", "offer_id": "1", "attempt": 1, "outcome": "failed"}
            with worker.engine.begin() as conn:
                conn.execute(insert(offer_attempts), [{**attempt, "finished_at": old},
                                                      {**attempt, "finished_at": now}])  # fmt: skip
            await service.housekeeping()
            left = len(ErrorLog(worker.engine).since(old - timedelta(days=1)))
            kept = [r.finished_at for r in AttemptHistory(worker.engine).of("pageup", "1")]
            assert kept == [now], "attempts past database.attempt_history_days are deleted"
            return jobs, left, failures, len(worker.notices.notices.recent())

    jobs, errors_left, failures, notices = asyncio.run(go())

    assert {"notices", "housekeeping"} <= jobs
    assert failures == [1] and notices == 1  # waiting, to be tried again
    assert errors_left == 0


class _Blocked:
    """``SourceRuns.take_due`` held in the store's thread until released."""

    def __init__(self, take_due: Callable[..., list[RunTicket]]) -> None:
        self._take_due = take_due
        self.entered = threading.Event()
        self.release = threading.Event()
        self.tickets: list[RunTicket] = []

    def __call__(self, *args: Any, **kwargs: Any) -> list[RunTicket]:
        self.entered.set()
        assert self.release.wait(30), "never released"
        self.tickets = self._take_due(*args, **kwargs)
        return self.tickets


def test_a_stop_while_the_database_hands_out_runs_starts_none_and_hands_them_back(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    data = simulator_settings(
        "http://127.0.0.1:9", "http://127.0.0.1:9", f"sqlite:///{tmp_path / 's.sqlite'}",
        mapping=REPO / "mappings" / "example_hris.yaml",
    )  # fmt: skip
    settings = Settings(**data)

    async def go() -> tuple[list[Any], list[RunTicket], list[SourceRow], list[Any]]:
        async with offer_worker(settings) as worker:
            service = Service(settings, worker)
            blocked = _Blocked(worker.source_runs.take_due)
            worker.source_runs.take_due = blocked  # type: ignore[method-assign]
            taking = asyncio.create_task(service.take_runs())
            await asyncio.to_thread(blocked.entered.wait, 30)
            service.request_stop(signal.SIGTERM)
            blocked.release.set()
            started = await taking
            rows = await worker.store.call(worker.source_runs.rows)
            runs = await worker.store.call(worker.runs.last, 5)
            return started, blocked.tickets, rows, list(runs)

    before = datetime.now(UTC)
    started, tickets, rows, runs = asyncio.run(go())
    logs = [json.loads(line) for line in captured_logs.getvalue().splitlines()]

    assert [t.source for t in tickets] == ["pageup"], "the database did hand out the run"
    assert started == []
    (row,) = rows
    assert row.lease_owner is None and row.run_id == tickets[0].run_id
    assert row.next_run_at.replace(tzinfo=UTC) >= before.replace(microsecond=0), "due now"
    assert [(r["run_id"], r["outcome"]) for r in runs] == [(tickets[0].run_id, "stopped")]
    names = [entry["event"] for entry in logs]
    assert "run_started" not in names
    assert ("runs_handed_back", ["pageup"]) in [(e["event"], e.get("sources")) for e in logs]
    assert [e for e in logs if e["level"] in ("error", "critical")] == []


def test_beat_and_housekeeping_are_waited_for_by_a_stop_and_not_begun_after_it(
    tmp_path: Path,
) -> None:
    data = simulator_settings(
        "http://127.0.0.1:9", "http://127.0.0.1:9", f"sqlite:///{tmp_path / 's.sqlite'}",
        mapping=REPO / "mappings" / "example_hris.yaml",
    )  # fmt: skip
    settings = Settings(**data)

    async def go() -> tuple[bool, bool, int]:
        async with offer_worker(settings) as worker:
            service = Service(settings, worker)
            entered, release = threading.Event(), threading.Event()
            beat = worker.workers.beat

            def slow_beat(owner: str) -> None:
                entered.set()
                assert release.wait(30)
                beat(owner)

            worker.workers.beat = slow_beat  # type: ignore[method-assign,assignment]
            beating = asyncio.create_task(service.beat())
            await asyncio.to_thread(entered.wait, 30)
            counted = any(not task.done() for task in service._busy)  # a stop waits for it
            service.request_stop(signal.SIGTERM)
            release.set()
            await beating
            entered.clear()
            await service.beat()
            await service.housekeeping()
            return counted, entered.is_set(), len(service._busy)

    counted, beat_after_stop, busy = asyncio.run(go())

    assert counted
    assert not beat_after_stop
    assert busy == 0


def test_reload_swaps_in_a_changed_applications_map_and_job_list(
    sims: Sims, tmp_path: Path
) -> None:
    from tests.pipelines.test_applications import COUNT, JOB, Rig
    from worker.application_runtime import application_syncs

    rig = Rig(sims, f"sqlite:///{tmp_path / 's.sqlite'}")
    rig.sim.add_job(3002, 5, first_id=810001)
    mapping = tmp_path / "applications.yaml"
    shutil.copy(REPO / "mappings" / "example_applications.yaml", mapping)
    text = mapping.read_text()
    settings = rig.settings(mapping)
    later = rig.settings(mapping, job_ids=[str(JOB), "3002"])
    added = text + "  origin: \"'reloaded'\"\n"
    find = text[text.index("find:") : text.index("requires:")]
    without_find = text.replace(find, "")

    async def run_reload_run() -> tuple[tuple[bool, str], tuple[bool, str], dict[str, int]]:
        async with offer_worker(settings) as worker, application_syncs(
            settings, worker.engine, worker.notices, worker.pageup_errors, worker.owner
        ) as syncs:  # fmt: skip
            service = Service(settings, worker, reread=lambda: later, applications=syncs)
            await service.sync_applications("pageup")
            mapping.write_text(without_find)  # a valid map, but not an applications map
            refused = await service.reload()
            await service.sync_applications("pageup")  # the old map and list go on
            after_refusal = dict(sims.hris.calls)
            mapping.write_text(added)
            taken = await service.reload()
            await service.sync_applications("pageup")
            return refused, taken, after_refusal

    (ok, problems), (ok_after, _), calls = asyncio.run(run_reload_run())

    assert not ok and f"{mapping}: an applications map needs find:" in problems
    assert ok_after
    assert (calls["post"], calls.get("put", 0)) == (COUNT, 0)  # the refused reload: no change
    records = list(sims.hris.records.values())
    assert len(records) == COUNT + 5  # job 3002's five, created once
    assert all(r.get("origin") == "reloaded" for r in records)  # the new map, for every one
    assert sims.hris.calls["put"] == COUNT  # job 3001's, updated once with the new field
    assert set(sims.hris.external_ids().values()) == {1}


def test_a_reload_that_gives_the_applications_flow_other_targets_says_it_needs_a_restart(
    sims: Sims, tmp_path: Path
) -> None:
    from tests.pipelines.test_applications import Rig
    from worker.application_runtime import application_syncs

    rig = Rig(sims, f"sqlite:///{tmp_path / 's.sqlite'}")
    settings = rig.settings()
    data = settings.model_dump(mode="json", exclude_none=True)
    data["sources"]["pageup"]["client_secret"] = sims.pageup.client_secret
    data["targets"]["hris"]["auth"]["api_key"] = sims.hris.api_key  # dumped as ****
    data["targets"]["talent"] = {**data["targets"]["hris"], "url": f"{sims.hris_url}/x"}
    data["routes"].append({"source": "pageup", "target": "talent"})
    data["sources"]["pageup"]["applications"]["targets"] = ["hris", "talent"]
    changed = Settings(**data)

    async def reload() -> tuple[bool, str]:
        async with offer_worker(settings) as worker, application_syncs(
            settings, worker.engine, worker.notices, worker.pageup_errors, worker.owner
        ) as syncs:  # fmt: skip
            return await Service(settings, worker, reread=lambda: changed,
                                 applications=syncs).reload()  # fmt: skip

    with structlog.testing.capture_logs() as logs:
        ok, _ = asyncio.run(reload())

    assert ok
    needing = {e["section"] for e in logs if e["event"] == "reload_needs_restart"}
    assert needing == {"sources.pageup.applications"}
