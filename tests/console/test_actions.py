"""Console actions through the store functions the CLI uses, each audited with the signed-in
user (worker/console/actions.py, bundle.py): run now, inbox retry, the support bundle."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from tests.console.conftest import Rig
from worker.settings import AtsSettings, JobSourceSettings
from worker.store.inbox import Inbox
from worker.store.jobs import JobLedger
from worker.store.ledger import Failure
from worker.store.tables import manual_actions, source_state


def _audit(rig: Rig) -> list[tuple[str, str, str, str]]:
    m = manual_actions.c
    with rig.ledger.engine.connect() as conn:
        rows = conn.execute(select(m.source, m.offer_id, m.action, m.actor).order_by(m.id)).all()
    return [tuple(row) for row in rows]


def test_run_now_brings_the_next_run_forward_and_is_audited(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    later = datetime.now(UTC) + timedelta(hours=1)
    with rig.ledger.engine.begin() as conn:
        conn.execute(update(source_state).values(next_run_at=later))
    rig.sign_in("otto")
    done = rig.client.post("/console/api/runs/now", json={"source": "pageup"},
                           headers={"x-csrf-token": rig.csrf()})  # fmt: skip
    assert done.status_code == 200 and done.json()["ok"]
    with rig.ledger.engine.connect() as conn:
        due = conn.execute(select(source_state.c.next_run_at)).scalar_one()
    assert due.replace(tzinfo=UTC) <= datetime.now(UTC)
    assert _audit(rig) == [("pageup", "run", "run_now", "otto")]


def test_a_parked_push_is_retried_and_audited(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    inbox = Inbox(rig.ledger.engine)
    inbox.add("apna", "key-1", '{"full_name": "x"}')
    (item,) = inbox.items()
    inbox.record_failure(item.id, Failure("deliver", "permanent", "HTTP 422", 422, park=True))
    assert inbox.get(item.id).state == "parked"  # type: ignore[union-attr]
    rig.sign_in("otto")
    page = rig.client.get("/console/inbox")
    assert f"Retry #{item.id}" in page.text and "HTTP 422" in page.text
    token = rig.page_csrf("/console/inbox")
    rig.client.post(f"/console/inbox/{item.id}/retry", data={"csrf": token})
    assert inbox.get(item.id).parked_at is None  # type: ignore[union-attr]  # due again
    assert _audit(rig) == [("apna", f"inbox#{item.id}", "inbox_retry", "otto")]


def test_only_admins_download_the_support_bundle(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.sign_in("otto")
    token = rig.page_csrf("/console/")
    assert rig.client.post("/console/support-bundle", data={"csrf": token}).status_code == 403
    rig.client.cookies.clear()
    rig.sign_in("ada")
    token = rig.page_csrf("/console/")
    answer = rig.client.post("/console/support-bundle", data={"csrf": token, "since": "24h"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    assert any(name.endswith("/pageup_errors.csv") for name in names)
    config = next(n for n in names if n.endswith("/config.json"))
    text = zipfile.ZipFile(io.BytesIO(answer.content)).read(config).decode()
    assert "s" * 40 not in text  # the session secret is redacted with the rest
    assert _audit(rig) == [("*", "support-bundle", "support_bundle", "ada")]


def test_jobs_link_and_retry_with_job_postings_on(
    make_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    ats = AtsSettings(enabled=True, api_key="k", source=JobSourceSettings(directory=tmp_path))
    rig = make_rig(extra={"ats": ats})
    rig.sign_in("otto")
    assert "Link a job" in rig.client.get("/console/jobs").text
    headers = {"x-csrf-token": rig.csrf()}
    linked = rig.client.post("/console/api/jobs/link", headers=headers,
                             json={"source_id": "J-7", "ats_job_id": "A-1"})  # fmt: skip
    assert linked.status_code == 200 and linked.json()["ok"]
    assert JobLedger(rig.ledger.engine, "hirebridge").all()["J-7"].ats_job_id == "A-1"
    jobs = rig.client.get("/console/api/jobs").json()
    assert jobs["enabled"] and jobs["counts"] == {"open": 1}
    assert rig.client.post("/console/api/jobs/retry", headers=headers).status_code == 409
    assert _audit(rig)[0] == ("hirebridge", "job:J-7", "job_link", "otto")


def test_a_candidate_map_can_be_uploaded_and_its_problem_lines_are_marked(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.sign_in("ada")
    token = rig.page_csrf("/console/maps/hris")
    answer = rig.client.post(
        "/console/maps/hris/try", data={"csrf": token},
        files={"file": ("candidate.yaml", b"fields:\n  a: {const: 1}\n  b: nosuch(x)\n")},
    )  # fmt: skip
    assert answer.status_code == 422
    assert '<li id="cand-3" class="marked">' in answer.text
    assert "unknown function nosuch()" in answer.text
