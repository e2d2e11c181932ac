"""kill -9 ``hirebridge run`` in the middle of a burst of Apna pushes: every lead answered 200
is in the inbox, once. (Pushes are committed in groups; each is answered only after its own.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from tests.conftest import Sims
from tests.e2e.service_process import Worker, apna_service, push_burst
from worker.settings import DatabaseSettings
from worker.simulators.apna import make_leads
from worker.store.db import create_store_engine
from worker.store.inbox import Inbox

pytestmark = pytest.mark.e2e
LEADS, CONNECTIONS = 600, 16


@pytest.mark.parametrize("kill_after", [120, 300])
def test_kill_9_during_a_burst_of_pushes_loses_no_lead_answered_200(
    sims: Sims, tmp_path: Path, kill_after: int
) -> None:
    database = f"sqlite:///{tmp_path / 'state.sqlite'}"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(apna_service(sims, database)))
    worker = Worker(config, dict(os.environ))
    leads = make_leads(LEADS, seed=9)

    def kill_at(answers: int) -> None:
        if answers == kill_after:
            worker.process.send_signal(signal.SIGKILL)

    try:
        url = f"http://127.0.0.1:{worker.wait_for('service_started')['port']}/inbound/apna"
        answered = push_burst(url, leads, CONNECTIONS, kill_at)
        assert worker.process.wait(timeout=60) == -signal.SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
    engine = create_store_engine(DatabaseSettings(url=database))
    items = Inbox(engine).items(limit=LEADS)
    engine.dispose()
    stored = [json.loads(item.payload)["contact_info"]["email"] for item in items if item.payload]
    delivered = {lead["email"] for lead in sims.hris.collected.get("leads", [])}
    ok = [index for index, status in answered.items() if status == 200]
    assert kill_after - CONNECTIONS <= len(ok) < LEADS  # killed mid-burst, after some answers
    for index in ok:
        email = leads[index]["contact_info"]["email"]
        assert email in stored or email.lower() in delivered
    assert len(stored) == len(set(stored)) and all(item.repeats == 0 for item in items)
