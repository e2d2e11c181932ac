"""The worker of ``sync --once``: a stop that comes while the database hands out runs."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from worker.demo import simulator_settings
from worker.pipelines.source_run import RunReport
from worker.runtime import offer_worker
from worker.settings import Settings
from worker.store.sources import RunTicket, SourceRow


def _settings(tmp_path: Path) -> Settings:
    data = simulator_settings(
        "http://127.0.0.1:9", "http://127.0.0.1:9", f"sqlite:///{tmp_path / 's.sqlite'}",
        mapping=REPO / "mappings" / "example_hris.yaml",
    )  # fmt: skip
    return Settings(**data)


class _HeldOnCall:
    """``take_due`` held in the store's thread on its ``nth`` call, until released."""

    def __init__(self, take_due: Callable[..., list[RunTicket]], nth: int) -> None:
        self._take_due, self._nth, self._calls = take_due, nth, 0
        self.entered, self.release = threading.Event(), threading.Event()
        self.tickets: list[RunTicket] = []

    def __call__(self, *args: Any, **kwargs: Any) -> list[RunTicket]:
        self._calls += 1
        if self._calls != self._nth:
            return self._take_due(*args, **kwargs)
        self.entered.set()
        assert self.release.wait(30), "never released"
        self.tickets = self._take_due(*args, **kwargs)
        return self.tickets


def _logged(captured: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.getvalue().splitlines()]


def _errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["level"] in ("error", "critical")]


def test_sync_once_stopped_while_taking_its_run_begins_none_and_hands_it_back(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    async def go() -> tuple[list[RunReport], list[RunTicket], list[SourceRow]]:
        async with offer_worker(_settings(tmp_path)) as worker:
            held = _HeldOnCall(worker.source_runs.take_due, 1)
            worker.source_runs.take_due = held  # type: ignore[method-assign]
            once = asyncio.create_task(worker.run_once())
            await asyncio.to_thread(held.entered.wait, 30)
            worker.stop()
            held.release.set()
            reports = await once
            return reports, held.tickets, await worker.store.call(worker.source_runs.rows)

    reports, tickets, rows = asyncio.run(go())
    logs = _logged(captured_logs)

    assert [t.source for t in tickets] == ["pageup"]
    assert [(r.source, r.outcome, r.listed) for r in reports] == [("pageup", "stopped", 0)]
    assert [row.lease_owner for row in rows] == [None]
    assert "run_started" not in [entry["event"] for entry in logs]
    assert _errors(logs) == []


def test_sync_once_following_a_dead_leader_does_not_take_its_run_over_once_stopped(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    async def go() -> tuple[list[RunReport], list[RunTicket], list[SourceRow]]:
        async with offer_worker(_settings(tmp_path)) as worker:
            worker.workers.register("other")
            worker.source_runs.take_due("other", ["pageup"], lease_seconds=60, limit=1)
            held = _HeldOnCall(worker.source_runs.take_due, 2)  # 1: led elsewhere; 2: following
            worker.source_runs.take_due = held  # type: ignore[method-assign]
            once = asyncio.create_task(worker.run_once())
            await asyncio.to_thread(held.entered.wait, 30)
            worker.workers.remove("other")  # its leader dies: the run is free to take over
            worker.stop()
            held.release.set()
            reports = await once
            return reports, held.tickets, await worker.store.call(worker.source_runs.rows)

    reports, tickets, rows = asyncio.run(go())
    logs = _logged(captured_logs)

    assert [t.source for t in tickets] == ["pageup"], "the database did hand the run over"
    assert [(r.source, r.outcome) for r in reports] == [("pageup", "helped")]
    assert [row.lease_owner for row in rows] == [None]
    assert "run_started" not in [entry["event"] for entry in logs]
    assert _errors(logs) == []
