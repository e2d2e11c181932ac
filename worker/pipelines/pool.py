"""A worker's lanes for offers, shared by every source.

The feeder claims due offers of every source whose run is in progress (this worker's runs and
other replicas': the offers of a large source spread across replicas) and queues them per
source. Each lane takes the next offer round-robin across sources, never running more offers
of one source at once than its budget (``concurrency``), so no tenant starves another. On a
stop, no offer is claimed or started any more, those in flight finish, and the queued ones are
given back untried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import structlog

from worker.pipelines.offers import OfferProcessor, Outcome
from worker.settings import SyncSettings
from worker.store.ledger import Claim, Ledger, OfferState
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)
PREFETCH = 2  # offers queued per source, as a multiple of its budget: fewer, larger claims


class OfferPool:
    def __init__(
        self,
        *,
        ledger: Ledger,
        store: StoreThread,
        processor: OfferProcessor,
        owner: str,
        settings: SyncSettings,
        sources: Callable[[], Sequence[str]],
        budget_of: Callable[[str], int],
        lane_context: Callable[[int], AbstractContextManager[None]],
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._processor = processor
        self._owner = owner
        self._settings = settings
        self._sources = sources  # the configured sources (changes on reload)
        self._budget_of = budget_of
        self._lane_context = lane_context
        self._queued: dict[str, deque[OfferState]] = {}
        self._running: Counter[str] = Counter()
        self._turn: list[str] = []  # round-robin order of sources with queued offers
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._stopping = False
        self._progressed: dict[str, asyncio.Event] = {}  # per source: an offer is done with
        self.processed_here: Counter[str] = Counter()  # per source, offers this worker processed
        processor.trailing.on_done(self._recorded)

    def progress_of(self, source: str) -> asyncio.Event:
        """Set each time this worker is done with one of ``source``'s offers (its run waits)."""
        return self._progressed.setdefault(source, asyncio.Event())

    def busy(self, source: str) -> bool:
        """Whether this worker has offers of ``source`` queued, in a lane, or marked and
        being recorded."""
        return (self._running[source] > 0 or bool(self._queued.get(source))
                or self._processor.trailing.busy(source))  # fmt: skip

    def _recorded(self, source: str) -> None:
        """An offer marked processed is recorded: its run may be drained now."""
        self.progress_of(source).set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def wake(self) -> None:
        """Offers may be due now (a run stored a listing): claim without waiting to poll."""
        self._wake.set()

    def stop(self) -> None:
        """Claim and start no more offers; those in flight finish."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Until stopped: claim, queue, process. A lane or the feeder dying of anything but
        an error of an offer (which is recorded and never escapes) ends the pool with it."""
        self._stopping = False
        lanes = {asyncio.create_task(self._lane(index)) for index in range(self._lanes)}
        feeder = asyncio.create_task(self._feed())
        try:
            done, _ = await asyncio.wait({feeder, *lanes}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self._stopping = True
            for task in (feeder, *lanes):
                task.cancel()
            await asyncio.gather(feeder, *lanes, return_exceptions=True)
            await self._processor.trailing.settle()
            await self._give_back_queued()

    @property
    def _lanes(self) -> int:
        return self._settings.concurrency

    async def _feed(self) -> None:
        while not self._stopping:
            queued = sum(len(q) for q in self._queued.values())
            room = self._lanes * PREFETCH - queued - self._running.total()
            if room < max(1, self._lanes // 2) and queued:
                await self._wait_for_wake(self._settings.poll_seconds)
                continue
            budgets = {
                name: self._budget_of(name) * PREFETCH - self._running[name]
                - len(self._queued.get(name, ()))
                for name in self._sources()
            }  # fmt: skip
            claim = Claim(
                owner=self._owner, lease_seconds=self._settings.lease_seconds, budgets=budgets,
                default_budget=0, limit=max(1, room), sources=tuple(budgets),
                worker_timeout=self._settings.worker_timeout_seconds,
            )  # fmt: skip
            try:
                claimed = await self._store.call(self._ledger.claim_due, claim)
            except Exception as exc:  # the database may be down: say so, keep trying
                log.error("offer_claim_failed", error=type(exc).__name__)
                claimed = []
            if claimed:
                await self._enqueue(claimed)
            else:
                await self._wait_for_wake(self._settings.poll_seconds)
        async with self._changed:  # the lanes waiting for an offer: there will be none
            self._changed.notify_all()

    async def _wait_for_wake(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _enqueue(self, offers: list[OfferState]) -> None:
        async with self._changed:
            for offer in offers:
                if offer.source not in self._queued:
                    self._queued[offer.source] = deque()
                if not self._queued[offer.source]:
                    self._turn.append(offer.source)
                self._queued[offer.source].append(offer)
            self._changed.notify_all()

    def _pick(self) -> OfferState | None:
        """The next offer, round-robin across sources, within each source's budget."""
        for _ in range(len(self._turn)):
            source = self._turn.pop(0)
            queue = self._queued[source]
            if self._running[source] < self._budget_of(source):
                offer = queue.popleft()
                if queue:
                    self._turn.append(source)
                self._running[source] += 1
                return offer
            self._turn.append(source)
        return None

    async def _lane(self, index: int) -> None:
        with self._lane_context(index):
            while True:
                async with self._changed:
                    offer = None
                    while not self._stopping and (offer := self._pick()) is None:
                        await self._changed.wait()
                if offer is None:
                    return
                try:
                    if await self._processor.process(offer) is Outcome.PROCESSED:
                        self.processed_here[offer.source] += 1
                except Exception as exc:  # a bug: the offer's lease expires; keep the lane
                    log.error("offer_processing_crashed", error=type(exc).__name__,
                              offer_id=offer.offer_id, source=offer.source)  # fmt: skip
                finally:
                    self._running[offer.source] -= 1
                    self.progress_of(offer.source).set()
                    async with self._changed:
                        self._changed.notify_all()
                    self._wake.set()

    async def _give_back_queued(self) -> None:
        left = [offer for queue in self._queued.values() for offer in queue]
        self._queued.clear()
        self._turn.clear()
        for offer in left:
            with contextlib.suppress(Exception):  # the lease expires anyway
                await self._store.call(self._ledger.release, offer.source, offer.offer_id,
                                       owner=self._owner, until=None)  # fmt: skip
        if left:
            log.info("offers_given_back", count=len(left))
