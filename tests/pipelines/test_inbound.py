"""Delivering stored pushes through their maps to a target (the HRIS simulator's intake)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REPO, Sims
from tests.pipelines.test_offers import Crash
from worker.pipelines.inbound import DeliveryReport
from worker.runtime import inbound_delivery, open_store
from worker.settings import NotificationSettings, Settings
from worker.simulators import pop_engine
from worker.simulators.apna import make_leads
from worker.simulators.server import BackgroundServer
from worker.store.inbox import Inbox
from worker.store.notices import NoticeStore

FAST = {"retry_backoff_initial_seconds": 0, "max_attempts": 3}
DETAILS = {"position_id": "10002063", "aname": "EPOP Leadership", "started": "2022-01-19",
           "completed": "2022-01-19", "report_id": "10012781", "report_name": "EPOP"}  # fmt: skip


@pytest.fixture
def engine_sim() -> Iterator[tuple[pop_engine.PopEngineState, str]]:
    state = pop_engine.PopEngineState()
    state.scores["10013810"] = {"score": 71.5, "score_final": 72, "score_text": "Recommended"}
    with BackgroundServer(pop_engine.build_app(state)) as server:
        yield state, server.url


def settings_for(sims: Sims, db_url: str, engine_url: str, **target: Any) -> Settings:
    data = sims.settings_data(db_url, sync=FAST)
    retry = {"attempts": 2, "backoff_initial_seconds": 0, "timeout_seconds": 2}
    key = {"type": "api_key", "header_name": "X-API-Key", "api_key": sims.hris.api_key}

    def target_for(collection: str, mapping: str) -> dict[str, Any]:
        url = f"{sims.hris_url}/api/intake/{collection}"
        return {"url": url, "auth": key, "mapping": str(REPO / "mappings" / mapping),
                "retry": retry, **target}  # fmt: skip

    data["inbound"] = {
        "apna": {"enabled": True, "auth": {"type": "bearer", "token": "t"},
                 "target": target_for("leads", "apna_leads.yaml")},
        "pop": {"enabled": True, "auth": "u:p",
                "target": target_for("assessments", "pop_assessments.yaml"),
                "engine": {"api_url": f"{engine_url}/api/1.0", "username": "pop-sim-partner",
                           "password": "pop-sim-password", "retry": retry}},
    }  # fmt: skip
    return Settings(**data)


def deliver(settings: Settings) -> DeliveryReport:
    async def go() -> DeliveryReport:
        engine = open_store(settings)
        try:
            async with inbound_delivery(settings, Inbox(engine)) as delivery:
                return await delivery.deliver_due()
        finally:
            engine.dispose()

    return asyncio.run(go())


def inbox_of(settings: Settings) -> Inbox:
    engine = open_store(settings)
    return Inbox(engine)


def store_leads(inbox: Inbox, count: int) -> list[dict[str, Any]]:
    leads = make_leads(count)
    for index, lead in enumerate(leads):
        assert inbox.add("apna", f"lead-{index}", json.dumps(lead))
    return leads


def notify(inbox: Inbox, application_id: str = "10013810") -> None:
    details = {**DETAILS, "application_id": application_id}
    payload = {"application_id": application_id, "method": "POST", "details": details}
    inbox.add("pop", f"{application_id}:10012781", json.dumps(payload))


def test_each_lead_is_delivered_once_and_its_payload_dropped(
    sims: Sims, db_url: str, engine_sim: Any, captured_logs: io.StringIO
) -> None:
    settings = settings_for(sims, db_url, engine_sim[1])
    inbox = inbox_of(settings)
    leads = store_leads(inbox, 5)

    first = deliver(settings)
    again = deliver(settings)

    assert (first.delivered, first.failed, again.delivered) == (5, 0, 0)
    posted = sims.hris.collected["leads"]
    assert sorted(p["email"] for p in posted) == sorted(
        lead["contact_info"]["email"] for lead in leads
    )
    items = inbox.items()
    assert all(i.status == "delivered" and i.payload is None and i.target_id for i in items)
    assert not any(lead["contact_info"]["email"] in captured_logs.getvalue() for lead in leads)


def test_an_assessment_is_delivered_with_its_score(
    sims: Sims, db_url: str, engine_sim: Any
) -> None:
    settings = settings_for(sims, db_url, engine_sim[1])
    notify(inbox_of(settings))

    report = deliver(settings)

    assert report.delivered == 1
    (posted,) = sims.hris.collected["assessments"]
    assert posted["applicationId"] == "10013810" and posted["score"]["final"] == 72
    assert posted["report"] == {"id": "10012781", "name": "EPOP"}
    assert engine_sim[0].calls["score_calc_get"] == 1


def test_an_application_the_engine_does_not_know_is_parked_with_its_reason(
    sims: Sims, db_url: str, engine_sim: Any
) -> None:
    settings = settings_for(sims, db_url, engine_sim[1])
    inbox = inbox_of(settings)
    notify(inbox, "777")

    report = deliver(settings)

    assert report.parked == 1 and not sims.hris.collected
    (item,) = inbox.items()
    assert item.parked_at is not None and "error_code 3: application not found" in (
        item.last_error or ""
    )
    assert inbox.retry_parked(item.id) == 1 and inbox.items()[0].parked_at is None


def test_a_target_outage_is_retried_later_not_lost(
    sims: Sims, db_url: str, engine_sim: Any
) -> None:
    settings = settings_for(sims, db_url, engine_sim[1])
    inbox = inbox_of(settings)
    store_leads(inbox, 2)
    sims.hris.faults.fail_next["intake"] = 4  # both tries of both leads

    first = deliver(settings)

    assert (first.delivered, first.failed, first.parked) == (0, 2, 0)
    assert {i.status for i in inbox.items()} == {"failed"}
    second = deliver(settings)
    assert second.delivered == 2 and len(sims.hris.collected["leads"]) == 2


def test_a_refusal_parks_the_push_and_tells_hr(sims: Sims, db_url: str, engine_sim: Any) -> None:
    settings = settings_for(sims, db_url, engine_sim[1], url=f"{sims.hris_url}/api/nowhere")
    channel = {"hr": {"url": "json://127.0.0.1:9/hook", "kinds": ["push"]}}
    settings = settings.model_copy(update={"notifications": NotificationSettings(channels=channel)})
    inbox = inbox_of(settings)
    store_leads(inbox, 1)

    report = deliver(settings)

    assert report.parked == 1
    item = inbox.items()[0]
    assert "HTTP 404" in (item.last_error or "")
    ((_, notice, sends),) = NoticeStore(inbox.engine).recent()
    assert (notice.kind, notice.source, notice.subject) == ("push", "apna", str(item.id))
    assert notice.problem.startswith(f"An Apna candidate lead (inbox item {item.id}) could not")
    assert sends == {"hr": None}


def test_crash_after_the_target_accepted_resends_with_the_same_key(
    sims: Sims, db_url: str, engine_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sims, db_url, engine_sim[1])
    inbox = inbox_of(settings)
    store_leads(inbox, 1)
    real = Inbox.record_delivered
    calls: list[int] = []

    def crash_once(self: Inbox, item_id: int, target_id: str | None) -> None:
        calls.append(item_id)
        if len(calls) == 1:
            raise Crash
        real(self, item_id, target_id)

    monkeypatch.setattr(Inbox, "record_delivered", crash_once)
    with pytest.raises(Crash):
        deliver(settings)
    with inbox.engine.begin() as conn:  # the crashed worker's lease runs out
        from sqlalchemy import update

        from worker.store.tables import inbox as inbox_table

        conn.execute(update(inbox_table).values(lease_until=None))

    report = deliver(settings)

    assert report.delivered == 1
    assert sims.hris.calls["idempotent_replay"] == 1 and len(sims.hris.collected["leads"]) == 1


def test_a_delivery_cycle_first_purges_bodies_parked_past_retention(
    sims: Sims, db_url: str, engine_sim: Any, captured_logs: io.StringIO
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from worker.store.ledger import Failure
    from worker.store.tables import inbox as inbox_table

    base = settings_for(sims, db_url, engine_sim[1])
    inbound = base.inbound.model_copy(update={"parked_retention_days": 10})
    settings = base.model_copy(update={"inbound": inbound})
    inbox = inbox_of(settings)
    leads = store_leads(inbox, 3)
    expired, recent, fresh = (item.id for item in inbox.items())
    for item_id, days in ((expired, 11), (recent, 9)):
        inbox.record_failure(item_id, Failure("post", "permanent", "HTTP 422", 422, park=True))
        with inbox.engine.begin() as conn:
            parked_at = datetime.now(UTC) - timedelta(days=days)
            conn.execute(
                update(inbox_table).where(inbox_table.c.id == item_id).values(parked_at=parked_at)
            )

    report = deliver(settings)

    assert report.delivered == 1  # the fresh lead; the parked ones are left parked
    items = {item.id: item for item in inbox.items()}
    assert items[expired].state == "purged" and items[expired].payload is None
    assert items[expired].last_error == "HTTP 422"
    assert items[recent].state == "parked" and items[recent].payload is not None
    assert items[fresh].state == "delivered" and items[fresh].purged_at is None
    assert [a["action"] for a in inbox.actions(expired)] == ["purged"]
    assert inbox.actions(recent) == [] and inbox.actions(fresh) == []
    assert "retention: parked over 10 days" in str(inbox.actions(expired)[0]["reason"])
    purged = [json.loads(line) for line in captured_logs.getvalue().splitlines()
              if '"parked_pushes_purged"' in line]  # fmt: skip
    assert [(e["inbox_ids"], e["older_than_days"]) for e in purged] == [([expired], 10)]
    assert leads[0]["full_name"] not in captured_logs.getvalue()
