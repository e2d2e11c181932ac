"""Worker processes and their heartbeats: who is alive, so that a dead one's leases are void."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, exists, select, update

from worker import __version__
from worker.store.tables import workers


def new_worker_id() -> str:
    """Unique per process (a restarted pod on the same host is a new worker)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def alive_owner(owner: Any, now: datetime, timeout: float) -> ColumnElement[bool]:
    """True where ``owner`` (a column) names a worker that beat within ``timeout`` seconds."""
    return alive_since(owner, now - timedelta(seconds=timeout))


def alive_since(owner: Any, since: Any) -> ColumnElement[bool]:
    """True where ``owner`` (a column) names a worker that beat after ``since`` (a value or a
    bound parameter)."""
    w = workers.c
    return exists().where(w.worker_id == owner, w.heartbeat_at > since)


@dataclass(frozen=True, slots=True)
class WorkerRow:
    worker_id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime


class Workers:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, worker_id: str) -> None:
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            conn.execute(
                workers.insert().values(
                    worker_id=worker_id,
                    host=socket.gethostname()[:64],
                    pid=os.getpid(),
                    version=__version__,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def beat(self, worker_id: str) -> None:
        """Renew this worker's heartbeat (re-registering it if a peer forgot it)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(workers)
                .where(workers.c.worker_id == worker_id)
                .values(heartbeat_at=datetime.now(UTC))
            )
        if result.rowcount == 0:
            self.register(worker_id)

    def remove(self, worker_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.worker_id == worker_id))

    def forget_all_but(self, worker_id: str) -> int:
        """Only safe when no other worker can be running (SQLite's one-process lock)."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(workers).where(workers.c.worker_id != worker_id))
        return int(result.rowcount)

    def all(self) -> list[WorkerRow]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(workers).order_by(workers.c.started_at)).all()
        return [WorkerRow(**row._mapping) for row in rows]
