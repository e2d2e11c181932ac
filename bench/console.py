"""The console's list and detail pages with a large ledger (issue: p99 < 200 ms at 100,000
offers, on SQLite and on PostgreSQL).

A fresh database is filled with ``--offers`` offers across two sources and two targets (mostly
processed; some failed, parked, pending; seeded), then a viewer signed in to the console asks
for the offer list (unfiltered, by state, parked only, by target, by stage, an id search, a
deep page) and offer pages chosen at random, through the console's own ASGI app (templates
and all). Each kind's p50 and p99 are printed with their ratio to the 200 ms bound.

    python bench/console.py [--offers 100000] [--requests 60] [--database-url URL]

Without a URL, SQLite in a temporary folder; with ``--database-url`` (or
$HIREBRIDGE_TEST_DATABASE_URL, as scripts/with-postgres sets) also PostgreSQL, in a database
created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, create_engine, insert, text  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from worker.console.auth import hash_password  # noqa: E402
from worker.console.context import ConsoleContext  # noqa: E402
from worker.console.web import console_app  # noqa: E402
from worker.demo import simulator_settings  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store.db import create_store_engine, migrate, normalise_url  # noqa: E402
from worker.store.sources import SourceRuns  # noqa: E402
from worker.store.tables import offer_attempts, offer_targets, offers  # noqa: E402

SEED = 20261203
BOUND_MS = 200.0
CHUNK = 5000
STAGES = ["map", "post", "fetch_offer", "mark_processed"]


def fill(engine: Engine, count: int) -> None:
    """``count`` offers in two sources, each sent to one of two targets, with their attempts
    (a processed offer: posted, then marked; a failed one: three failures)."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    rows, targets, tried = [], [], []
    for index in range(count):
        source = "au" if index % 2 else "nz"
        roll = rng.random()
        status = ("processed" if roll < 0.9 else "failed" if roll < 0.95
                  else "pending" if roll < 0.98 else "skipped")  # fmt: skip
        failed = status == "failed"
        seen = now - timedelta(minutes=count - index)
        rows.append({
            "source": source, "offer_id": str(1_000_000 + index), "status": status,
            "stage": rng.choice(STAGES) if failed else None, "attempts": 3 if failed else 1,
            "error_kind": "mapping" if failed else None,
            "last_error": "field 'tax.taxFileNumber': required, but it gave no value"
            if failed else None,
            "first_seen_at": seen, "updated_at": seen, "routed_at": seen,
            "claimed_at": seen, "fetched_at": seen, "mapped_at": seen,
            "processed_at": seen if status == "processed" else None,
            "parked_at": seen if failed and rng.random() < 0.5 else None,
        })  # fmt: skip
        targets.append({
            "source": source, "offer_id": str(1_000_000 + index),
            "target": "payroll" if index % 3 else "hris",
            "status": "posted" if status == "processed" else "pending", "attempts": 1,
            "record_id": f"EMP-{index}" if status == "processed" else None,
            "mapping_version": "0123456789ab", "updated_at": seen,
            "posted_at": seen if status == "processed" else None,
        })  # fmt: skip
        tried += _attempts(rows[-1], targets[-1])
        if len(rows) == CHUNK:
            _write(engine, rows, targets, tried)
            rows, targets, tried = [], [], []
    if rows:
        _write(engine, rows, targets, tried)


def _attempts(offer: dict[str, Any], target: dict[str, Any]) -> list[dict[str, Any]]:
    key = {"source": offer["source"], "offer_id": offer["offer_id"],
           "started_at": offer["first_seen_at"], "finished_at": offer["first_seen_at"],
           "mapping_version": target["mapping_version"], "record_id": None, "stage": None,
           "reason": None}  # fmt: skip
    if offer["status"] == "processed":
        return [{**key, "target": target["target"], "attempt": 1, "outcome": "posted",
                 "record_id": target["record_id"]},
                {**key, "target": None, "attempt": 1, "outcome": "processed"}]  # fmt: skip
    if offer["status"] == "failed":
        return [{**key, "target": target["target"], "attempt": n, "outcome": "failed",
                 "stage": offer["stage"], "reason": offer["last_error"]}
                for n in (1, 2, 3)]  # fmt: skip
    return []


def _write(
    engine: Engine,
    rows: list[dict[str, Any]],
    targets: list[dict[str, Any]],
    tried: list[dict[str, Any]],
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(offers), rows)
        conn.execute(insert(offer_targets), targets)
        conn.execute(insert(offer_attempts), tried)


def settings_for(url: str, folder: Path) -> Settings:
    data = simulator_settings("http://127.0.0.1:9", "http://127.0.0.1:9", url)
    pageup, hris = data.pop("pageup"), data.pop("hris")
    mapping = REPO / "mappings" / "example_hris.yaml"
    data["sources"] = {"au": pageup, "nz": {**pageup, "offer_action_type_id": 2}}
    data["targets"] = {"payroll": {**hris, "mapping": str(mapping)},
                       "hris": {**hris, "mapping": str(mapping)}}  # fmt: skip
    data["routes"] = [{"source": "*", "target": "payroll"}]
    users = {"vera": {"password_hash": hash_password("bench-password-1"), "role": "viewer"}}
    data["console"] = {"enabled": True, "session_secret": "b" * 40, "users": users}
    return Settings(**data)


def client_for(settings: Settings, engine: Engine) -> TestClient:
    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    async def reload() -> tuple[bool, str]:
        return True, ""

    async def health() -> dict[str, Any]:
        return {"status": "ready", "checks": {}, "sources": {}, "targets": {}}

    ctx = ConsoleContext(settings=lambda: settings, engine=engine, call=call, sources=dict,
                         reload=reload, health=health)  # fmt: skip
    client = TestClient(Starlette(routes=[console_app(ctx)]), base_url="http://127.0.0.1")
    signed = client.post("/console/login", data={"user": "vera", "password": "bench-password-1"},
                         follow_redirects=False)  # fmt: skip
    assert signed.status_code == 303, signed.text
    return client


def timed(client: TestClient, paths: list[str]) -> list[float]:
    took = []
    for path in paths:
        started = time.perf_counter()
        answer = client.get(path)
        took.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return took


def measure(url: str, count: int, requests: int) -> list[tuple[str, list[float]]]:
    folder = Path(tempfile.mkdtemp(prefix="hirebridge-bench-console-"))
    settings = settings_for(url, folder)
    engine = create_store_engine(settings.database)
    migrate(engine)
    SourceRuns(engine, worker_timeout=30).ensure(["au", "nz"])
    started = time.perf_counter()
    fill(engine, count)
    if engine.dialect.name == "postgresql":  # as autovacuum would have, on a ledger this size
        with engine.begin() as conn:
            conn.execute(text("ANALYZE offers; ANALYZE offer_targets; ANALYZE offer_attempts"))
    print(f"  filled {count} offers in {time.perf_counter() - started:.1f} s")
    client = client_for(settings, engine)
    rng = random.Random(SEED)
    ids = [str(1_000_000 + rng.randrange(count)) for _ in range(requests)]
    deep = max(1, count // settings.console.page_size // 2)
    lists = {
        "list: all": "/console/offers",
        "list: failed": "/console/offers?status=failed",
        "list: parked": "/console/offers?parked=yes",
        "list: target": "/console/offers?target=hris",
        "list: stage": "/console/offers?stage=map&source=au",
        "list: id search": "/console/offers?q=1000{}*",
        "list: deep page": f"/console/offers?page={deep}",
    }
    found = []
    for name, path in lists.items():
        paths = [path.format(i % 10) for i in range(requests)]
        timed(client, paths[:3])  # warm-up
        found.append((name, timed(client, paths)))
    sources = {str(1_000_000 + i): "au" if i % 2 else "nz" for i in range(count)}
    details = [f"/console/offers/{sources[i]}/{i}" for i in ids]
    timed(client, details[:3])
    found.append(("offer page", timed(client, details)))
    api = [f"/console/api/offers/{sources[i]}/{i}" for i in ids]
    found.append(("offer (API)", timed(client, api)))
    engine.dispose()
    return found


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    admin = create_engine(normalise_url(base_url), isolation_level="AUTOCOMMIT")
    name = f"hb_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield normalise_url(base_url).rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def report(store: str, found: list[tuple[str, list[float]]]) -> bool:
    print(f"\n{store}: milliseconds per request ({len(found[0][1])} each)")
    print(f"  {'page':<18} {'p50':>8} {'p99':>8} {'p99/bound':>10}")
    ok = True
    for name, took in found:
        p50 = statistics.median(took)
        p99 = statistics.quantiles(took, n=100, method="inclusive")[98]
        ok &= p99 < BOUND_MS
        print(f"  {name:<18} {p50:>8.1f} {p99:>8.1f} {p99 / BOUND_MS:>10.2f}")
    print(f"  bound {BOUND_MS:.0f} ms at p99: {'met' if ok else 'NOT met'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--database-url", default=os.environ.get("HIREBRIDGE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"SQLite, {args.offers} offers")
        report("SQLite", measure(f"sqlite:///{folder}/bench.sqlite", args.offers, args.requests))
    if args.database_url:
        with postgres_database(args.database_url) as url:
            print(f"\nPostgreSQL, {args.offers} offers")
            report("PostgreSQL", measure(url, args.offers, args.requests))
    else:
        print("\n(PostgreSQL skipped: give --database-url or run under scripts/with-postgres)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
