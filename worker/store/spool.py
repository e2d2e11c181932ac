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
        limit: int = 10_000,
    ) -> None:  # fmt: skip
        """``write(rows)`` runs on the store's thread; past ``limit`` rows waiting (the
        database is down), new ones are dropped and counted."""
        self._store = store
        self._write = write
        self._name = name
        self._limit = limit
        self._rows: list[T] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, row: T) -> None:
        """Queue ``row``; returns at once. Outside an event loop (a command's sync code) the
        row is written on the spot."""
        if len(self._rows) >= self._limit:
            metrics.SPOOL_DROPPED.labels(self._name).inc()
            return
        self._rows.append(row)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_now()
            return
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._rows:
            rows, self._rows = self._rows, []
            try:
                await self._store.call(self._write, rows)
            except Exception as exc:  # the database is down or refused: never the caller's
                metrics.SPOOL_DROPPED.labels(self._name).inc(len(rows))
                log.error("spool_write_failed", spool=self._name, rows=len(rows),
                          error=type(exc).__name__)  # fmt: skip

    def _write_now(self) -> None:
        rows, self._rows = self._rows, []
        try:
            self._write(rows)
        except Exception as exc:
            metrics.SPOOL_DROPPED.labels(self._name).inc(len(rows))
            log.error("spool_write_failed", spool=self._name, rows=len(rows),
                      error=type(exc).__name__)  # fmt: skip

    async def drain(self) -> None:
        """Write everything queued so far (before the store closes, and in tests)."""
        if self._task is not None and not self._task.done():
            await self._task
        if self._rows:
            self._task = asyncio.get_running_loop().create_task(self._flush())
            await self._task
