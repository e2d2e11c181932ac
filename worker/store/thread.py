"""The store's own thread: synchronous SQLAlchemy calls made from the event loop without
stalling it (a remote database's round trips, a SQLite file's fsyncs).

Measured with SQLite (bench/offer_sync): ledger calls on the loop gave 0.79-0.82 of the bound at
3.7-4.1 ms CPU per offer; in one thread of their own 0.91-0.92 at 4.5-4.8 ms. One thread keeps
the calls of the process in order: a call made after another runs after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class StoreThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
