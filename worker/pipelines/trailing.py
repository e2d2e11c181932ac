"""Ledger writes a lane does not wait for: the record that an offer was marked processed.

Once PageUp has taken an offer's mark, nothing the worker does next depends on the ledger
saying so: a crash before that record commits leaves the offer exactly as a crash just after
the mark did (PageUp took it; the ledger reads it as posted, and holds no key to send again).
So the lane takes its next offer while the commit is made, instead of waiting one group
commit per offer on its critical path. The offer stays leased to this worker until then, a
run counts it as in flight (``busy``), and a stop settles every such write before the store
closes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog

from worker.store.ledger import LeaseLost

log = structlog.get_logger(__name__)


class Trailing:
    def __init__(self) -> None:
        self._per_source: Counter[str] = Counter()
        self._writes: set[asyncio.Future[Any]] = set()
        self._listeners: list[Callable[[str], None]] = []

    def add(self, source: str, written: asyncio.Future[Any]) -> None:
        """Follow ``written`` (a store write) to its end; its failure is logged, in the
        context it was added in (the offer's)."""
        self._per_source[source] += 1
        self._writes.add(written)
        written.add_done_callback(lambda done: self._done(source, done))

    def busy(self, source: str) -> bool:
        """Whether a write of ``source``'s is still being committed."""
        return self._per_source[source] > 0

    def on_done(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(source)`` as each write ends."""
        self._listeners.append(listener)

    async def settle(self) -> None:
        """Wait for every write followed so far."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _done(self, source: str, done: asyncio.Future[Any]) -> None:
        self._writes.discard(done)
        self._per_source[source] -= 1
        error = None if done.cancelled() else done.exception()
        if isinstance(error, LeaseLost):
            log.warning("offer_lease_lost")
        elif error is not None:
            log.error("offer_processed_not_recorded", error=type(error).__name__)
        for listener in self._listeners:
            listener(source)
