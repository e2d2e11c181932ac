"""Rows written in the background, in batches, through the store's thread.

For records that must not slow the work that produces them nor fail it: the error log of
PageUp calls and the notices to HR users. ``add`` only appends to a list (called on the event
loop, from a remote call or a pipeline's failure path); one task at a time writes what has
gathered, in one transaction. A write that fails is logged and counted, never raised: the
offer that produced the row has its own, truthful, state in the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

from worker import metrics
from worker.store.thread import StoreThread

T = TypeVar("T")
log = structlog.get_logger(__name__)


class Spool(Generic[T]):
    def __init__(
        self, store: StoreThread, write: Callable[[list[T]], object], *, name: str,
        limit: int = 10_000, retries: int = 5, first_delay: float = 1.0,
    ) -> None:  # fmt: skip
        """``write(rows)`` runs on the store's thread. A write that fails is tried again after
        ``first_delay`` seconds, doubling, ``retries`` times (a database restarting, a lock),
        then its rows are dropped and counted; past ``limit`` rows waiting, new ones are."""
        self._store = store
        self._write = write
        self._name = name
        self._limit = limit
        self._retries = retries
        self._first_delay = first_delay
        self._failures = 0  # of the batch at the front, in a row
        self._rows: list[T] = []
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # the next try, while backing off

    def add(self, row: T) -> None:
        """Queue ``row``; returns at once. Outside an event loop (a command's sync code) the
        row is written on the spot."""
        if len(self._rows) >= self._limit:
            self._drop(1, "full")
            return
        self._rows.append(row)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._write_now()
            return
        if self._timer is None:
            self._start()

    def _start(self) -> None:
        self._timer = None
        if self._rows and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self, *, final: bool = False) -> None:
        while self._rows:
            rows, self._rows = self._rows, []
            try:
                await self._store.call(self._write, rows)
            except Exception as exc:  # the database is down or refused: never the caller's
                self._failures += 1
                if final or self._failures > self._retries:
                    self._failures = 0
                    self._drop(len(rows), type(exc).__name__)
                    continue
                self._rows = rows + self._rows  # in order, the oldest first
                if len(self._rows) > self._limit:
                    self._drop(len(self._rows) - self._limit, "full")
                    del self._rows[self._limit :]
                delay = self._first_delay * 2 ** (self._failures - 1)
                log.warning("spool_write_retried", spool=self._name, rows=len(rows),
                            error=type(exc).__name__, retry_in_seconds=delay)  # fmt: skip
                self._timer = asyncio.get_running_loop().call_later(delay, self._start)
                return
            self._failures = 0

    def _drop(self, count: int, why: str) -> None:
        metrics.SPOOL_DROPPED.labels(self._name).inc(count)
        log.error("spool_write_failed", spool=self._name, rows=count, error=why)

    def _write_now(self) -> None:
        rows, self._rows = self._rows, []
        try:
            self._write(rows)
        except Exception as exc:
            self._drop(len(rows), type(exc).__name__)

    async def drain(self) -> None:
        """Write everything queued so far, one last try for rows still failing (before the
        store closes, and in tests)."""
        if self._task is not None and not self._task.done():
            await self._task
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._rows:
            self._task = asyncio.get_running_loop().create_task(self._flush(final=True))
            await self._task
