"""Alembic environment: runs on the connection hirebridge hands it (see worker.store.db)."""

from __future__ import annotations

from alembic import context

from worker.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through worker.store.db.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
