"""The store's own thread: synchronous SQLAlchemy calls made from the event loop without
stalling it (a remote database's round trips, a SQLite file's fsyncs), and group commit.

One thread keeps the calls of the process in order: a call made after another runs after it.

``call(fn, ...)`` runs ``fn`` alone. ``write(fn, ...)`` may share one transaction, and so one
fsync, with the other writes that arrive within ``window`` seconds of the first, up to
``max_rows`` of them: concurrent offers' state changes and concurrent pushes each paid a
commit of their own (4 ms of fsync on the CI machine's disk). Each caller resumes only once the
transaction holding its write has committed, so "stored" still means durable. A write that
raises (a lost lease) is left out alone: the transaction is rolled back and the writes before
it run again without it. So a grouped function must reach the database only through
``transaction(engine)``, and must do nothing else that cannot be done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine

P = ParamSpec("P")
T = TypeVar("T")
WINDOW_SECONDS = 0.002
MAX_ROWS = 64


class _Group(threading.local):
    connection: Connection | None = None


_group = _Group()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()``, or, inside a group commit on this thread, the group's transaction."""
    conn = _group.connection
    if conn is None or conn.engine is not engine:
        with engine.begin() as own:
            yield own
    else:
        yield conn


@dataclass(slots=True)
class _Job:
    fn: Callable[[], Any]
    future: asyncio.Future[Any]
    grouped: bool
    outcome: tuple[bool, Any] = field(default=(False, None))  # (ok, result or exception)


_NOTHING: Any = object()


class StoreThread:
    def __init__(
        self,
        engine: Engine | None = None,
        *,
        window: float = WINDOW_SECONDS,
        max_rows: int = MAX_ROWS,
    ) -> None:
        """``engine``: the database the grouped writes go to (without one, none is grouped)."""
        self._engine = engine
        self._window = window
        self._max_rows = max_rows
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.commits = 0  # transactions of grouped writes (tests and benches read it)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Run ``fn`` in the store's thread, alone, after everything submitted before it (it
        is submitted now; await the result)."""
        return self._submit(lambda: fn(*args, **kwargs), grouped=False)

    def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Run ``fn`` in the store's thread, possibly in one transaction with other writes;
        the result is there once that transaction committed."""
        return self._submit(lambda: fn(*args, **kwargs), grouped=self._engine is not None)

    def _submit(self, fn: Callable[[], T], *, grouped: bool) -> asyncio.Future[T]:
        self._start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put(_Job(fn, future, grouped))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Finish what was submitted, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        job: _Job | None = self._jobs.get()
        while job is not None:
            if not job.grouped:
                _run_alone(job)
                _settle([job])
                job = self._jobs.get()
                continue
            batch, job = self._gather(job)
            self._commit(batch)
            _settle(batch)
            if job is _NOTHING:
                job = self._jobs.get()

    def _gather(self, first: _Job) -> tuple[list[_Job], _Job | None]:
        """The writes that arrive within the window (or are already waiting), up to max_rows;
        and the next job, which could not join them (None: stop; _NOTHING: none came)."""
        batch = [first]
        deadline = time.monotonic() + self._window
        while len(batch) < self._max_rows:
            wait = deadline - time.monotonic()
            try:
                job = self._jobs.get(timeout=wait) if wait > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None or not job.grouped:
                return batch, job
            batch.append(job)
        return batch, _NOTHING

    def _commit(self, batch: list[_Job]) -> None:
        """Commit the batch's writes in one transaction. A write that raises is left out: the
        transaction is rolled back and the others run again without it."""
        left = batch
        try:
            while left and (failed := self._attempt(left)) is not None:
                left = [job for job in left if job is not failed]
        except BaseException as exc:  # the commit failed: nothing of the group is stored
            for job in left:
                job.outcome = (False, exc)
        else:
            self.commits += 1

    def _attempt(self, batch: list[_Job]) -> _Job | None:
        """Run the batch in one transaction and commit it; or, if a write raised, roll back
        and return that write (its outcome is the exception)."""
        assert self._engine is not None
        with self._engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # Python's sqlite3 would open the transaction only at the first write; take
                # the write lock at once, as one transaction for the whole group.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            _group.connection = conn
            try:
                for job in batch:
                    try:
                        job.outcome = (True, job.fn())
                    except BaseException as exc:  # the caller's to handle; the thread goes on
                        job.outcome = (False, exc)
                        conn.rollback()
                        return job
                conn.commit()
            except BaseException:
                # SQLAlchemy would pool the connection with the transaction still open, and
                # the next commit on it would store this group after all: discard it.
                conn.invalidate()
                raise
            finally:
                _group.connection = None
        return None


def _run_alone(job: _Job) -> None:
    try:
        job.outcome = (True, job.fn())
    except BaseException as exc:
        job.outcome = (False, exc)


def _settle(jobs: list[_Job]) -> None:
    """Hand the outcomes to the event loop(s) waiting for them, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        by_loop.setdefault(job.future.get_loop(), []).append(job)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: no one is waiting any more
            loop.call_soon_threadsafe(_resolve, settled)


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.cancelled():
            continue
        ok, value = job.outcome
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
