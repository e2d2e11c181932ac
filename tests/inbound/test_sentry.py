"""With Sentry on, inbound pushes are still answered as their endpoint decides, when it decides."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import FakeIngest
from worker import alerts
from worker.settings import SentrySettings, ServiceSettings


def test_with_sentry_on_an_inbound_push_is_answered_before_its_body_is_read(
    ingest: tuple[FakeIngest, str], make_rig: Any
) -> None:
    """Sentry's Starlette integration would read every request's body before the endpoint:
    a push refused for its credentials would wait for a body that never comes."""
    _fake, dsn = ingest
    assert alerts.init_sentry(SentrySettings(dsn=dsn))
    rig = make_rig(service=ServiceSettings(port=0, request_timeout_seconds=30))
    url = urlsplit(rig.url)
    head = (b"POST /inbound/apna HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"full")  # fmt: skip
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(head)
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:60]
    assert time.monotonic() - started < 10, "answered without waiting for the body"
