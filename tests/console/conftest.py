"""A console app over a real (SQLite) ledger, without the rest of the service."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import REPO
from tests.store.ledger_rig import Rig as StoreRig
from worker.console.auth import hash_password
from worker.console.context import ConsoleContext
from worker.console.web import console_app
from worker.demo import simulator_settings
from worker.settings import Settings
from worker.store.db import create_store_engine, migrate
from worker.store.ledger import Failure, Ledger, Sending
from worker.store.sources import SourceRuns
from worker.store.workers import Workers

SECRET = "s" * 40
PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1", "ada": "admin-password-1"}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}
# Fast argon2 hashes would not be argon2id's defaults; these are made once per session.
_HASHES: dict[str, str] = {}
PII_REASON = "called jane.doe@example.com about TFN 123 456 782"


def hashes() -> dict[str, str]:
    if not _HASHES:
        _HASHES.update({user: hash_password(pw) for user, pw in PASSWORDS.items()})
    return _HASHES


def console_settings(tmp_path: Path, **console: Any) -> Settings:
    mapping = tmp_path / "map.yaml"
    if not mapping.exists():
        mapping.write_text((REPO / "mappings" / "example_hris.yaml").read_text())
    data = simulator_settings(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        f"sqlite:///{tmp_path / 'state.sqlite'}",
        mapping=mapping,
    )
    users = {u: {"password_hash": h, "role": ROLES[u]} for u, h in hashes().items()}
    data["console"] = {"enabled": True, "session_secret": SECRET, "users": users, **console}
    data["service"] = {"trusted_proxies": ["10.0.0.0/8"]}
    return Settings(**data)


@dataclass
class Rig:
    settings: Settings
    client: TestClient
    ledger: Ledger
    reloads: list[int]
    # What the service's reload answers next (then: reloaded).
    reload_answers: list[tuple[bool, str]]

    def sign_in(self, user: str, password: str | None = None) -> Any:
        return self.client.post(
            "/console/login",
            data={"user": user, "password": password or PASSWORDS[user]},
            follow_redirects=False,
        )

    def csrf(self) -> str:
        token: str = self.client.get("/console/api/session").json()["csrf_token"]
        return token

    def page_csrf(self, path: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text)
        assert found is not None
        return found.group(1)


def parked_offer(ledger: Ledger, offer_id: str = "1001", source: str = "pageup") -> None:
    ledger.enqueue(source, [(offer_id, None)], datetime.now(UTC))
    failure = Failure(
        "map", "mapping", "field 'tfn': required, but onboarding gave no value", None, park=True
    )
    with ledger.engine.begin() as conn:
        from sqlalchemy import update

        from worker.store.tables import offers

        conn.execute(
            update(offers)
            .where(offers.c.offer_id == offer_id)
            .values(
                status="failed",
                stage=failure.stage,
                error_kind=failure.kind,
                last_error=failure.message,
                attempts=1,
                parked_at=datetime.now(UTC),
            )
        )


def attempted_offer(ledger: Ledger, offer_id: str = "1003", source: str = "pageup") -> None:
    """An offer taken through two real attempts: both targets answered 503 to the first (next
    try set); in the second hris accepted it and payroll's new map refused it (parked, with a
    reason that names someone)."""
    rig = StoreRig(ledger.engine, ledger, SourceRuns(ledger.engine, worker_timeout=30),
                   Workers(ledger.engine))  # fmt: skip
    for attempt in (1, 2):
        ticket = rig.start(source, [offer_id])
        assert len(rig.claim()) == 1
        now = datetime.now(UTC)
        sending = [Sending("hris", "kh", "h", "hris-v3")] + (
            [Sending("payroll", "kp", "h", "pay-v1")] if attempt == 1 else [])  # fmt: skip
        route = ["hris", "payroll"] if attempt == 1 else None
        ledger.begin_delivery(source, offer_id, owner="w1", sending=sending, fetched_at=now,
                              mapped_at=now, route=route)  # fmt: skip
        if attempt == 1:
            down = Failure(
                "post", "retriable", "payroll answered 503", 503, next_attempt_at=now
            )  # due again at once: the next run takes it
            ledger.record_failed(source, offer_id, owner="w1", offer=down,
                                 targets={"hris": down, "payroll": down})  # fmt: skip
            rig.runs.finish(ticket, "w1", now)
            continue
        ledger.record_posted(source, offer_id, "hris", owner="w1", record_id="EMP-000042")
        refused = Failure("map", "mapping", f"field 'tfn': {PII_REASON}", None, park=True,
                          mapping_version="pay-v2")  # fmt: skip
        ledger.record_failed(source, offer_id, owner="w1", offer=refused,
                             targets={"payroll": refused})  # fmt: skip


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    engines = []

    def make(
        client_host: str = "127.0.0.1", extra: dict[str, Any] | None = None, **console: Any
    ) -> Rig:
        settings = console_settings(tmp_path, **console).model_copy(update=extra or {})
        engine = create_store_engine(settings.database)
        migrate(engine)
        engines.append(engine)
        SourceRuns(engine, worker_timeout=30).ensure(list(settings.sources))
        reloads: list[int] = []
        answers: list[tuple[bool, str]] = []

        async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        async def reload() -> tuple[bool, str]:
            reloads.append(1)
            return answers.pop(0) if answers else (True, "ok")

        async def health() -> dict[str, Any]:
            return {"status": "ready", "checks": {"database": "ok"}, "sources": {}, "targets": {}}

        ctx = ConsoleContext(
            settings=lambda: settings,
            engine=engine,
            call=call,
            sources=dict,
            reload=reload,
            health=health,
        )
        app = Starlette(routes=[console_app(ctx)])
        client = TestClient(app, base_url="http://127.0.0.1", client=(client_host, 5000))
        return Rig(settings, client, Ledger(engine), reloads, answers)

    yield make
    for engine in engines:
        engine.dispose()
