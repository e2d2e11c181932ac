"""Connection failures on real loopback sockets: each names host:port and the cause.

Nothing leaves the machine. The TLS certificates are made with the ``openssl`` command
(the ``cryptography`` package is not installed here); the ``.invalid`` name (RFC 6761: it
never resolves) is answered by a stand-in for ``socket.getaddrinfo``, because this machine's
resolver is not on loopback.
"""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import ssl
import struct
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from worker.errors import RetriableError
from worker.redact import scrub_text
from worker.remote.failures import describe, host_port
from worker.remote.http import Reply, exchange
from worker.remote.lanes import new_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (also usable as its own CA) and its key."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("certs")
    return {name: make_cert(folder, name) for name in ("server", "other")}


async def call(url: str, *, timeout: float = 2.0, ca_bundle: Path | None = None) -> Reply:
    client = new_client(2, ca_bundle)
    try:
        return await exchange(
            client, "GET", url, system="hris", stage="post", route="/x", timeout=timeout
        )
    finally:
        await client.aclose()


def failure(url: str, **options: Any) -> str:
    with pytest.raises(RetriableError) as caught:
        asyncio.run(call(url, **options))
    message = str(caught.value)
    assert scrub_text(message) == message  # what is stored and sent to Sentry reads the same
    return message


def with_server(handler: Handler, scenario: Callable[[int], Awaitable[Any]],
                tls: ssl.SSLContext | None = None) -> Any:  # fmt: skip
    """Run ``scenario(port)`` against a loopback server whose connections ``handler`` serves."""

    async def go() -> Any:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
        async with server:
            return await scenario(server.sockets[0].getsockname()[1])

    return asyncio.run(go())


def server_failure(handler: Handler, tls: ssl.SSLContext | None = None, **options: Any) -> str:
    async def scenario(port: int) -> str:
        with pytest.raises(RetriableError) as caught:
            await call(f"{'https' if tls else 'http'}://127.0.0.1:{port}/x", **options)
        return f"{caught.value}".replace(str(port), "PORT")

    message: str = with_server(handler, scenario, tls)
    assert scrub_text(message) == message
    return message


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


def test_a_refused_port_is_named() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    assert failure(f"http://127.0.0.1:{port}/offers/900101") == (
        f"cannot connect to 127.0.0.1:{port}: connection refused"
    )


def test_a_name_that_does_not_resolve_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)  # anyio passes IDNA bytes
        if name.endswith(".invalid"):
            asked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    message = failure("https://hris.hirebridge-test.invalid/api/employees")
    assert message == "cannot connect to hris.hirebridge-test.invalid:443: name not resolved"
    assert asked == ["hris.hirebridge-test.invalid"]


def tls_server(certs: dict[str, tuple[Path, Path]]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certs["server"])
    return context


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await read_request(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # the client gave up during the handshake
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


def test_an_untrusted_certificate_names_the_system_store(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    message = server_failure(answer_ok, tls_server(certs))
    assert message == (
        "cannot connect to 127.0.0.1:PORT: TLS verification failed (self-signed certificate) "
        "against the system's default CA store"
    )


def test_an_untrusted_certificate_names_the_configured_ca_bundle(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    other = certs["other"][0]
    message = server_failure(answer_ok, tls_server(certs), ca_bundle=other)
    assert message == (
        "cannot connect to 127.0.0.1:PORT: TLS verification failed (self-signed certificate) "
        f"against the system's CA store plus tls.ca_bundle {other}"
    )

    async def trusted(port: int) -> int:  # the same server, with its certificate in the bundle
        reply = await call(f"https://127.0.0.1:{port}/x", ca_bundle=certs["server"][0])
        return reply.status

    assert with_server(answer_ok, trusted, tls_server(certs)) == 200


def test_a_server_that_never_answers_times_out_reading() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes

    message = server_failure(silent, timeout=0.2)
    assert message == "timed out after 0.2s waiting for 127.0.0.1:PORT to answer"


def test_a_listener_that_never_accepts_times_out_connecting() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # a queue of one connection, never accepted
    port = listener.getsockname()[1]
    filler = socket.socket()
    filler.setblocking(False)
    assert filler.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
    _, writable, _ = select.select([], [filler], [], 5)
    assert writable, "the first connection should have filled the queue"
    try:  # the kernel now drops the SYNs of further connections
        message = failure(f"http://127.0.0.1:{port}/x", timeout=0.2)
    finally:
        filler.close()
        listener.close()
    assert message == f"timed out after 0.2s connecting to 127.0.0.1:{port}"


def test_a_server_that_hangs_up_or_resets_is_named() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        linger = struct.pack("ii", 1, 0)  # close with an RST, not a FIN
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        writer.transport.abort()

    assert server_failure(hang_up) == (
        "connection to 127.0.0.1:PORT failed: the peer closed the connection before answering"
    )
    assert server_failure(reset) == (
        "connection to 127.0.0.1:PORT failed: connection reset by the peer"
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [(httpx.WriteTimeout("w"), "timed out after 3s sending the request to [::1]:8443"),
     (httpx.PoolTimeout("p"), "timed out after 3s waiting for a free connection to [::1]:8443"),
     (httpx.RemoteProtocolError("illegal header line"),
      "connection to [::1]:8443 failed: the peer did not answer in valid HTTP")],
)  # fmt: skip
def test_other_failures_still_name_the_place(exc: httpx.TransportError, expected: str) -> None:
    url = httpx.URL("https://[::1]:8443/offers/900101?api_key=secret")
    assert describe(exc, url, timeout=3, trust="-").message == expected
    assert host_port(httpx.URL("http://hris.example.com/x")) == "hris.example.com:80"
