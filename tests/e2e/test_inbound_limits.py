"""``hirebridge run`` with inbound pushes on, attacked as in issue #11: huge and many headers
get 431, a body that never finishes gets 408 after service.request_timeout_seconds, and only
the one honest lead is stored, once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import Sims
from tests.e2e.service_process import Worker, apna_service

pytestmark = pytest.mark.e2e


def read_until_closed(conn: socket.socket) -> bytes:
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


def test_header_caps_and_the_request_timeout_hold_in_a_running_service(
    sims: Sims, tmp_path: Path
) -> None:
    from worker.settings import DatabaseSettings
    from worker.simulators.apna import make_leads
    from worker.store.db import create_store_engine
    from worker.store.inbox import Inbox

    database = f"sqlite:///{tmp_path / 'state.sqlite'}"
    data = apna_service(sims, database, request_timeout_seconds=0.5)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    worker = Worker(config, dict(os.environ))
    lead = make_leads(1, seed=11)[0]
    auth = {"Authorization": "Bearer t0k"}
    try:
        port = worker.wait_for("service_started")["port"]
        url = f"http://127.0.0.1:{port}/inbound/apna"
        huge = httpx.post(url, json=lead, headers={**auth, "X-Pad": "a" * 1_000_000})
        many = httpx.post(url, json=lead, headers={**auth, **{f"X-{i}": "1" for i in range(500)}})
        assert (huge.status_code, many.status_code) == (431, 431)

        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            started = time.monotonic()
            head = (b"POST /inbound/apna HTTP/1.1\r\nHost: hirebridge\r\n"
                    b"Authorization: Bearer t0k\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 400\r\n\r\n")  # fmt: skip
            conn.sendall(head + json.dumps(lead).encode()[:40])  # then nothing
            slow = read_until_closed(conn)
            elapsed = time.monotonic() - started
        assert slow.startswith(b"HTTP/1.1 408 ") and 0.5 <= elapsed < 5

        assert httpx.post(url, json=lead, headers=auth).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=60) == 0
        worker.wait_for("service_stopped")  # every event before it is now in worker.seen
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
    reasons = [(e["http_status"], e["reason"]) for e in worker.seen
               if e.get("event") == "http_request_refused"]  # fmt: skip
    assert reasons == [(431, "headers over 16384 bytes"), (431, "more than 100 headers"),
                       (408, "request not received within 0.5 s")]  # fmt: skip
    engine = create_store_engine(DatabaseSettings(url=database))
    items = Inbox(engine).items()
    engine.dispose()
    assert len(items) == 1 and items[0].repeats == 0  # the honest lead, stored exactly once
