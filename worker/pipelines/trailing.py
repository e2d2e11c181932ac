"""Ledger writes a lane does not wait for: the record that an offer was marked processed.

Once PageUp has taken an offer's mark, nothing the worker does next depends on the ledger
saying so: a crash before that record commits leaves the offer exactly as a crash just after
the mark did (PageUp took it; the ledger reads it as posted, and holds no key to send again).
So the lane takes its next offer while the commit is made, instead of waiting one group
commit per offer on its critical path. The offer stays leased to this worker until then, a
run counts it as in flight (``busy``), and a stop settles every such write before the store
closes.

A write that fails (the database blinked) is made again after a pause, a few times: until it
is, the offer counts as in flight and its run cannot end. One refused because the worker no
longer holds the offer (LeaseLost) is not: another worker has it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from worker.store.ledger import LeaseLost

log = structlog.get_logger(__name__)
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds before each further try of a failed write

Write = Callable[[], "asyncio.Future[Any]"]


class Trailing:
    def __init__(self, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self._retry_delays = tuple(retry_delays)
        self._per_source: Counter[str] = Counter()
        self._following: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[str], None]] = []

    def add(self, source: str, write: Write) -> None:
        """Submit ``write()`` (a store write) now, in order with the writes before it, and
        follow it to its end, trying again if it fails; its failures are logged in the
        context it was added in (the offer's)."""
        self._per_source[source] += 1
        following = asyncio.ensure_future(self._follow(source, write, write()))
        self._following.add(following)
        following.add_done_callback(self._following.discard)

    def busy(self, source: str) -> bool:
        """Whether a write of ``source``'s is still being committed (or tried again)."""
        return self._per_source[source] > 0

    def on_done(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(source)`` as each write ends, written or given up."""
        self._listeners.append(listener)

    async def settle(self) -> None:
        """Wait for every write followed so far."""
        while self._following:
            await asyncio.gather(*self._following, return_exceptions=True)

    async def _follow(self, source: str, write: Write, first: asyncio.Future[Any]) -> None:
        try:
            attempt = first
            for delay in (*self._retry_delays, None):
                try:
                    await attempt
                    return
                except LeaseLost:
                    log.warning("offer_lease_lost")
                    return
                except Exception as exc:
                    if delay is None:
                        log.error("offer_processed_not_recorded", error=type(exc).__name__,
                                  tries=len(self._retry_delays) + 1)  # fmt: skip
                        return
                    log.warning("offer_processed_record_retried", error=type(exc).__name__,
                                retry_in_seconds=delay)  # fmt: skip
                    await asyncio.sleep(delay)
                    attempt = write()
        finally:
            self._per_source[source] -= 1
            for listener in self._listeners:
                listener(source)
