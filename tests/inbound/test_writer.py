"""InboxWriter: the pushes of one turn of the event loop go to the store as one write, and each
learns its own outcome only once that write is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from worker.inbound.server import InboxWriter
from worker.store.inbox import Inbox
from worker.store.thread import StoreThread


def test_concurrent_pushes_share_one_write_and_each_gets_its_own_outcome(inbox: Inbox) -> None:
    inbox.add("apna", "old", "{}")
    store = StoreThread(inbox.engine)
    woken: list[int] = []
    writer = InboxWriter(inbox, store, stored=lambda: woken.append(1))
    keys = [f"k{index}" for index in range(20)] + ["old", "k3"]

    async def push_all() -> list[bool]:
        return await asyncio.gather(*(writer.add("apna", key, f'"{key}"') for key in keys))

    try:
        outcomes = asyncio.run(push_all())
    finally:
        store.close()
    assert outcomes == [True] * 20 + [False, False]
    assert store.commits == 1 and len(woken) == 20
    items = {item.dedup_key: item for item in inbox.items()}
    assert len(items) == 21 and items["k3"].repeats == 1 and items["old"].repeats == 1
    assert items["k7"].payload == '"k7"'


class Failing(Inbox):
    def add_many(self, pushes: Sequence[tuple[str, str, str]]) -> list[bool]:
        if any(key == "poison" for _, key, _ in pushes):
            raise RuntimeError("disk full")
        return super().add_many(pushes)


def test_a_write_that_fails_fails_each_push_in_it_and_stores_none(inbox: Inbox) -> None:
    failing = Failing(inbox.engine)
    store = StoreThread(inbox.engine)
    writer = InboxWriter(failing, store, stored=lambda: None)

    async def push(keys: list[str]) -> list[bool | BaseException]:
        pushes = (writer.add("apna", key, "{}") for key in keys)
        return await asyncio.gather(*pushes, return_exceptions=True)

    async def both() -> tuple[list[bool | BaseException], list[bool | BaseException]]:
        return await push(["a", "poison", "b"]), await push(["c"])

    try:
        first, second = asyncio.run(both())
    finally:
        store.close()
    assert all(isinstance(outcome, RuntimeError) for outcome in first)
    assert second == [True]
    assert [item.dedup_key for item in inbox.items()] == ["c"]


P = ParamSpec("P")
T = TypeVar("T")


class Closed(StoreThread):
    def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        raise RuntimeError("the store is closed")


def test_a_write_that_cannot_even_be_submitted_fails_each_push(inbox: Inbox) -> None:
    writer = InboxWriter(inbox, Closed(inbox.engine), stored=lambda: None)

    async def push() -> list[bool | BaseException]:
        pushes = (writer.add("apna", key, "{}") for key in ("a", "b"))
        return await asyncio.wait_for(asyncio.gather(*pushes, return_exceptions=True), 10)

    outcomes = asyncio.run(push())
    assert [str(outcome) for outcome in outcomes] == ["the store is closed"] * 2
    assert not inbox.items()
