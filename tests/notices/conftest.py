"""Real channels on loopback for the notice tests: an SMTP server (aiosmtpd) that requires
STARTTLS and a login, and an HTTPS webhook receiver (Starlette) standing in for Slack and Teams.
Both present certificates from a throw-away CA (trustme) that only these tests trust."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.server import BackgroundServer

SMTP_USER, SMTP_PASSWORD = "hr-mailer", "smtp-Pa55-word"


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trust_test_ca(test_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process trusts the test CA (and only it): OpenSSL's default paths for smtplib,
    requests' bundle for the webhooks."""
    pem = tmp_path / "test-ca.pem"
    test_ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pem))
    return pem


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpInbox:
    """An SMTP server on loopback: STARTTLS required before AUTH, AUTH before mail."""

    def __init__(self, ca: trustme.CA) -> None:
        self.messages: list[bytes] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, tls_context=context,
            require_starttls=True, auth_required=True, auth_require_tls=True,
            authenticator=self._authenticate,
        )  # fmt: skip

    def _authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        ok = data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        content = envelope.content or b""
        self.messages.append(content if isinstance(content, bytes) else content.encode())
        return "250 OK"

    def url(self, password: str = SMTP_PASSWORD) -> str:
        return (f"mailtos://{SMTP_USER}:{password}@127.0.0.1:{self.port}?mode=starttls"
                "&from=hirebridge@example.com&to=hr-team@example.com")  # fmt: skip

    def texts(self) -> list[str]:
        """Each message as a reader sees it: subject and every decoded body part."""
        found = []
        for raw in self.messages:
            message = email.message_from_bytes(raw, policy=email.policy.default)
            parts = [str(message["subject"])]
            for part in message.walk():
                if part.get_content_maintype() == "text":
                    parts.append(part.get_content())
            found.append("\n".join(parts))
        return found

    def start(self) -> SmtpInbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class WebhookReceiver:
    """HTTPS on loopback; records each POST (path, JSON body); ``down`` answers 503."""

    ca: trustme.CA
    tmp: Path
    received: list[tuple[str, Any]] = field(default_factory=list)
    down: bool = False

    def __post_init__(self) -> None:
        cert = self.ca.issue_cert("127.0.0.1")
        key, chain = self.tmp / "hook-key.pem", self.tmp / "hook-cert.pem"
        cert.private_key_pem.write_to_path(str(key))
        cert.cert_chain_pems[0].write_to_path(str(chain))

        async def receive(request: Request) -> Response:
            if self.down:
                return JSONResponse({"error": "unavailable"}, status_code=503)
            self.received.append((request.url.path, json.loads(await request.body())))
            return Response("ok", status_code=200)  # as Slack answers (Teams takes 200 too)

        app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
            lifespan="off", ssl_keyfile=str(key), ssl_certfile=str(chain),
        )  # fmt: skip
        self._server = BackgroundServer(app, config=config)

    def start(self) -> WebhookReceiver:
        self._server.start()
        self.port = int(self._server.url.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        self._server.stop()

    def teams_url(self) -> str:
        """A Teams channel: a Power Automate workflow's webhook, here on loopback."""
        return f"workflows://127.0.0.1:{self.port}/wf0123456789abcdef/SiGnAtUrE0123456789"

    def texts(self) -> list[str]:
        """Each message as a reader sees it: the card's texts, markdown escapes undone."""
        return [re.sub(r"\\(.)", r"\1", "\n".join(_strings(body))) for _, body in self.received]

    def raw(self) -> list[str]:
        return [json.dumps(body, ensure_ascii=False) for _, body in self.received]


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


@pytest.fixture
def smtp(test_ca: trustme.CA, trust_test_ca: Path) -> Iterator[SmtpInbox]:
    server = SmtpInbox(test_ca).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def webhook(test_ca: trustme.CA, trust_test_ca: Path, tmp_path: Path) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(test_ca, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
