"""The store's thread: group commit of concurrent writes, each caller resuming only once its
own write is committed; a failing write undone alone; calls kept in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select

from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine, migrate
from worker.store.inbox import Inbox
from worker.store.tables import inbox
from worker.store.thread import StoreThread, transaction


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_store_engine(DatabaseSettings(url=db_url))
    migrate(engine)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> int:
    with engine.connect() as conn:  # another connection: sees only what was committed
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


def test_concurrent_writes_share_commits_and_each_resumes_once_committed(engine: Engine) -> None:
    store = StoreThread(engine, window=0.05, max_rows=100)
    box = Inbox(engine)
    visible_on_return: list[int] = []

    async def push(n: int) -> bool:
        new = await store.write(box.add, "apna", f"key-{n}", "{}")
        visible_on_return.append(stored(engine))  # committed before the caller goes on
        return new

    async def go() -> list[bool]:
        return await asyncio.gather(*(push(n) for n in range(40)))

    try:
        assert asyncio.run(go()) == [True] * 40
    finally:
        store.close()
    assert stored(engine) == 40
    assert store.commits <= 4  # one transaction per window, not one per push
    assert min(visible_on_return) >= 1 and all(v >= 1 for v in visible_on_return)


def test_max_rows_closes_a_group_early(engine: Engine) -> None:
    store = StoreThread(engine, window=5.0, max_rows=10)  # the window alone would take 5 s
    box = Inbox(engine)

    async def go() -> None:
        await asyncio.wait_for(
            asyncio.gather(*(store.write(box.add, "apna", f"k{n}", "{}") for n in range(20))),
            timeout=4,
        )

    try:
        asyncio.run(go())
    finally:
        store.close()
    assert stored(engine) == 20 and store.commits == 2


class Refused(Exception):
    pass


def test_a_failing_write_is_undone_alone(engine: Engine) -> None:
    store = StoreThread(engine, window=0.05)

    def add(n: int, fail: bool) -> int:
        with transaction(engine) as conn:
            conn.execute(insert(inbox).values(**row(n)))
            if fail:
                raise Refused(n)  # after its own insert: that insert must not be kept
        return n

    async def go() -> list[Any]:
        return await asyncio.gather(*(store.write(add, n, n == 3) for n in range(6)),
                                    return_exceptions=True)  # fmt: skip

    try:
        outcomes = asyncio.run(go())
    finally:
        store.close()
    assert [type(o).__name__ if isinstance(o, Exception) else o for o in outcomes] == [
        0, 1, 2, "Refused", 4, 5,
    ]  # fmt: skip
    with engine.connect() as conn:
        keys = sorted(conn.execute(select(inbox.c.dedup_key)).scalars())
    assert keys == ["k0", "k1", "k2", "k4", "k5"]


def test_a_commit_that_fails_fails_every_write_of_its_group(engine: Engine) -> None:
    store = StoreThread(engine, window=0.05)
    box = Inbox(engine)
    failures = [True]

    def fail_once(_conn: Any) -> None:
        if failures:
            failures.pop()
            raise Refused("disk full")

    event.listen(engine, "commit", fail_once)

    async def go() -> list[Any]:
        return await asyncio.gather(*(store.write(box.add, "apna", f"k{n}", "{}")
                                      for n in range(5)), return_exceptions=True)  # fmt: skip

    try:
        outcomes = asyncio.run(go())
        assert all(isinstance(o, Refused) for o in outcomes)
        assert stored(engine) == 0

        async def again() -> bool:
            return await store.write(box.add, "apna", "k0", "{}")

        assert asyncio.run(again()) is True and stored(engine) == 1
    finally:
        event.remove(engine, "commit", fail_once)
        store.close()


def test_a_call_after_writes_runs_after_them(engine: Engine) -> None:
    store = StoreThread(engine, window=0.05)
    box = Inbox(engine)

    async def go() -> int:
        writes = [store.write(box.add, "apna", f"k{n}", "{}") for n in range(5)]
        count = await store.call(stored, engine)  # submitted after the writes
        await asyncio.gather(*writes)
        return count

    try:
        assert asyncio.run(go()) == 5
    finally:
        store.close()


def row(n: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return {"source": "apna", "dedup_key": f"k{n}", "payload": "{}", "status": "pending",
            "attempts": 0, "repeats": 0, "received_at": now, "updated_at": now}  # fmt: skip
