"""The service's HTTP server limits, through a real uvicorn with the service's own config:
header size and count (431) and the request deadline (408), each leaving nothing stored."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.inbound.conftest import APNA_PASSWORD, APNA_USER, Rig
from worker.inbound.server import InboxWriter
from worker.settings import ServiceSettings
from worker.simulators.apna import make_leads
from worker.store.thread import StoreThread

APNA = (APNA_USER, APNA_PASSWORD)
TIMEOUT = 0.5  # the server's request deadline in these tests
LIMITS = ServiceSettings(port=0, request_timeout_seconds=TIMEOUT)


@pytest.fixture
def rig(make_rig: Any) -> Rig:
    served: Rig = make_rig(service=LIMITS)
    return served


def post_lead(rig: Rig, **kw: Any) -> httpx.Response:
    return httpx.post(f"{rig.url}/inbound/apna", json=make_leads(1)[0], auth=APNA, **kw)


def exchange(rig: Rig, data: bytes) -> tuple[bytes, float]:
    """Send ``data`` on a raw connection, then read until the server closes it: what it
    answered and after how long. A bounded socket timeout stops a server that never does."""
    url = urlsplit(rig.url)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received, time.monotonic() - started


def head(path: str = "/inbound/apna", length: int = 100, auth: bool = True) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: hirebridge", "Content-Type: application/json",
             f"Content-Length: {length}"]  # fmt: skip
    if auth:
        lines.append("Authorization: Basic " + base64.b64encode(":".join(APNA).encode()).decode())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_and_body(reply: bytes) -> tuple[int, Any]:
    head_part, _, body = reply.partition(b"\r\n\r\n")
    return int(head_part.split(b" ", 2)[1]), json.loads(body)


def assert_stored_once_after(rig: Rig) -> None:
    """Nothing was stored by the refused request, and the next push is stored once."""
    assert not rig.inbox.items()
    assert post_lead(rig).status_code == 200
    assert len(rig.inbox.items()) == 1


def test_a_1_mb_header_is_refused_with_431_and_nothing_is_stored(rig: Rig) -> None:
    reply = post_lead(rig, headers={"X-Pad": "a" * 1_000_000})
    assert reply.status_code == 431
    assert reply.json()["message"] == "headers over 16384 bytes"
    assert reply.headers["connection"] == "close"
    assert_stored_once_after(rig)


def test_500_headers_are_refused_with_431(rig: Rig) -> None:
    reply = post_lead(rig, headers={f"X-Header-{i}": "1" for i in range(500)})
    assert reply.status_code == 431 and reply.json()["message"] == "more than 100 headers"
    assert_stored_once_after(rig)


def test_the_caps_are_exact_and_configurable(make_rig: Any) -> None:
    limits = ServiceSettings(port=0, max_header_bytes=4096, max_headers=20)
    rig = make_rig(service=limits)
    assert post_lead(rig, headers={"X-Pad": "a" * 3000}).status_code == 200
    assert post_lead(rig, headers={"X-Pad": "a" * 4000}).status_code == 431
    # httpx sends 8 headers of its own with these (host, accept, auth, content-type ...).
    assert post_lead(rig, headers={f"X-{i}": "1" for i in range(12)}).status_code == 200
    assert post_lead(rig, headers={f"X-{i}": "1" for i in range(13)}).status_code == 431
    assert len(rig.inbox.items()) == 1  # the two accepted leads are one lead, stored once


def test_a_header_that_never_ends_is_refused_before_it_fills_memory(rig: Rig) -> None:
    url = urlsplit(rig.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(b"POST /inbound/apna HTTP/1.1\r\nHost: hirebridge\r\nX-Pad: ")
        sent = 0
        while sent < 4_000_000:  # the server reads and drops it after its answer
            conn.sendall(b"a" * 65536)
            sent += 65536
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert status_and_body(reply) == (431, {"status": "error",
                                            "message": "headers over 16384 bytes"})  # fmt: skip
    assert_stored_once_after(rig)


def test_a_body_that_never_finishes_gets_408_after_the_request_timeout(rig: Rig) -> None:
    reply, elapsed = exchange(rig, head(length=100) + b'{"full_name": "Ab')
    status, body = status_and_body(reply)
    assert (status, body["message"]) == (408, "request not received within 0.5 s")
    assert TIMEOUT <= elapsed < 5  # the deadline closed it, not the keep-alive (5 s)
    assert_stored_once_after(rig)


def test_a_head_that_never_finishes_or_never_starts_gets_408(rig: Rig) -> None:
    partial, elapsed = exchange(rig, b"POST /inbound/apna HTTP/1.1\r\nHost: hirebridge\r\n")
    assert status_and_body(partial)[0] == 408 and TIMEOUT <= elapsed < 5
    silent, elapsed = exchange(rig, b"")
    assert status_and_body(silent)[0] == 408 and TIMEOUT <= elapsed < 5
    assert_stored_once_after(rig)


def test_an_answer_sent_before_the_body_is_in_is_not_followed_by_a_408(make_rig: Any) -> None:
    # A deadline far longer than the 401 takes, even on a loaded machine: the 401 must come
    # first (with 0.5 s a busy machine could let the deadline pass before the app answered).
    deadline = 3.0
    rig = make_rig(service=ServiceSettings(port=0, request_timeout_seconds=deadline))
    reply, elapsed = exchange(rig, head(length=100, auth=False) + b'{"full')
    assert reply.startswith(b"HTTP/1.1 401 ") and reply.count(b"HTTP/1.1") == 1
    assert deadline <= elapsed < deadline + 5  # closed by the deadline, no body having come
    assert not rig.inbox.items()


def test_the_deadline_is_for_receiving_the_request_not_for_answering_it(
    make_rig: Any, db_url: str
) -> None:
    probe = make_rig()
    writer = InboxWriter(probe.inbox, StoreThread(probe.inbox.engine), stored=lambda: None)

    async def slow_store(source: str, key: str, payload: str) -> bool:
        await asyncio.sleep(TIMEOUT * 2)  # a slow database, not synchronisation
        return bool(await writer.add(source, key, payload))

    rig = make_rig(store=slow_store, service=LIMITS)
    assert post_lead(rig).status_code == 200
    assert len(rig.inbox.items()) == 1
