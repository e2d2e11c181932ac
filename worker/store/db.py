"""Engines for SQLite (the zero set-up default) and PostgreSQL, and schema migrations."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from worker.errors import ConfigError
from worker.settings import DatabaseSettings

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x68697265  # "hire": the advisory lock that serialises migrations


def upsert_into(engine: Engine, table: Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the engine's dialect."""
    return upsert_for(engine.dialect.name, table)


def upsert_for(dialect: str, table: Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the dialect named."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (SQLAlchemy's default is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_store_engine(settings: DatabaseSettings) -> Engine:
    """An engine for ``settings.url``; SQLite files get WAL, a busy timeout and their folder."""
    try:
        url = make_url(normalise_url(settings.url))
    except ArgumentError:
        raise ConfigError(["database.url: not a valid SQLAlchemy URL"]) from None
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_pragmas(engine, settings.sqlite_synchronous)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine, None for other databases (or in-memory)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return None if engine.url.database == ":memory:" else Path(engine.url.database)


@contextmanager
def one_process_only(engine: Engine) -> Iterator[None]:
    """SQLite serves one worker process: hold an exclusive lock beside the file for the block.

    A second process is refused with a clear message (PostgreSQL is the store for replicas).
    """
    path = sqlite_file(engine)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ConfigError(
                [
                    f"database: another hirebridge process (pid {holder}) is using {path}; "
                    "a SQLite store serves one process at a time; "
                    "use PostgreSQL for several replicas"
                ]
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _migration_lock(database_file: Path | None) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes and threads (flock)."""
    if database_file is None:
        yield
        return
    with database_file.with_name(database_file.name + ".migrate.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, the newest by default (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    database_file = sqlite_file(engine)
    try:
        with _migration_lock(database_file), engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # Replicas starting together migrate one at a time; the lock ends with the
                # transaction, and the next replica then finds the schema current.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            else:
                # Python's sqlite3 opens a transaction only before DML, so a migration's DDL
                # would commit step by step; one explicit transaction makes a failed
                # migration leave the file as it was.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise ConfigError([f"database: cannot migrate: {type(exc).__name__}: {detail}"]) from None


def as_utc(value: datetime) -> datetime:
    """A timestamp read back from the store, in UTC (SQLite drops the time zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)
