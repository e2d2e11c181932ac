"""The background spool of the error log and the notices: a failed write is tried again."""

from __future__ import annotations

import asyncio
import threading

from prometheus_client import REGISTRY

from worker.store.spool import Spool
from worker.store.thread import StoreThread


def dropped(name: str) -> float:
    return REGISTRY.get_sample_value("hirebridge_spool_dropped_total", {"spool": name}) or 0


class FlakyTable:
    """Refuses the first ``failures`` writes, as a database does while it restarts."""

    def __init__(self, failures: int, settle_after: int) -> None:
        self.failures = failures
        self.rows: list[int] = []
        self.tries = 0
        self.settled = threading.Event()  # written, or tried ``settle_after`` times
        self._settle_after = settle_after

    def write(self, rows: list[int]) -> None:
        self.tries += 1
        if self.tries >= self._settle_after:
            self.settled.set()
        if self.tries <= self.failures:
            raise RuntimeError("database restarting")
        self.rows.extend(rows)
        self.settled.set()


def run(table: FlakyTable, *, name: str, retries: int) -> None:
    async def go() -> None:
        store = StoreThread()
        spool: Spool[int] = Spool(store, table.write, name=name, retries=retries,
                                  first_delay=0.0)  # fmt: skip
        try:
            for row in range(3):
                spool.add(row)
            # The first write and its retries (no delay between them) run in the background.
            assert await asyncio.to_thread(table.settled.wait, 30)
            spool.add(3)
            await spool.drain()
        finally:
            store.close()

    asyncio.run(go())


def test_rows_a_failed_write_held_are_written_once_the_database_is_back() -> None:
    before = dropped("flaky")
    table = FlakyTable(failures=2, settle_after=3)

    run(table, name="flaky", retries=5)

    assert table.rows == [0, 1, 2, 3]  # each once, in order
    assert dropped("flaky") == before


def test_past_its_retries_a_batch_is_dropped_and_counted() -> None:
    before = dropped("down")
    table = FlakyTable(failures=1000, settle_after=3)

    run(table, name="down", retries=2)

    assert table.rows == []
    assert dropped("down") - before == 4  # every row, each counted once
