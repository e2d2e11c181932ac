"""The aiohttp transport under httpx: remote systems see the same requests as with httpcore's,
a stalled upload times out, pool limits hold, and vcrpy records and replays its traffic."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr

from worker.errors import RateLimitedError, RetriableError
from worker.remote.http import exchange, raise_for_status
from worker.remote.lanes import new_client, tls_context
from worker.remote.transport import SMALL_BODY, Transport

Seen = list[tuple[str, list[tuple[str, str]], bytes]]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


def recording(seen: Seen) -> Handler:
    """A server that keeps each request as it arrived on the socket (names as sent)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                line, *rest = head.split("\r\n")
                headers = [(n, v) for n, _, v in (h.partition(": ") for h in rest if h)]
                lowered = {n.lower(): v for n, v in headers}
                if "content-length" in lowered:
                    body = await reader.readexactly(int(lowered["content-length"]))
                else:
                    body = await _chunked(reader) if "transfer-encoding" in lowered else b""
                seen.append((line, headers, body))
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handle


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while size := int((await reader.readline()).strip(), 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readline()
    return body


async def some_calls(client: httpx.AsyncClient, base: str) -> None:
    """A GET with a query, JSON, a form, a multipart upload and streamed bodies."""

    async def streamed() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    boundary = {"Content-Type": "multipart/form-data; boundary=fixed-for-the-test"}
    await client.get(f"{base}/a", params={"q": "1 2", "name": "é"},
                     headers={"Accept": "application/json", "X-Custom-Name": "v"})  # fmt: skip
    await client.post(f"{base}/b", json={"k": "v", "n": [1, 2]}, headers={"Idempotency-Key": "k"})
    await client.post(f"{base}/c", data={"grant_type": "client_credentials", "scope": "a b"})
    await client.post(
        f"{base}/d",
        data={"f": "1"},
        headers=boundary,
        files={"file": ("a.pdf", io.BytesIO(b"%PDF-1.4 " * 500), "application/pdf")},
    )
    await client.put(f"{base}/e", content=streamed())
    await client.put(f"{base}/f", content=streamed(), headers={"Content-Length": "12"})
    await client.post(f"{base}/g", content=b"x" * (3 * SMALL_BODY + 5))


def client_with(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, headers={"User-Agent": "hirebridge/test"})


def test_remote_systems_see_the_same_requests_as_with_httpcore() -> None:
    limits = httpx.Limits(max_connections=4)

    async def through(transport: httpx.AsyncBaseTransport) -> Seen:
        seen: Seen = []
        server = await asyncio.start_server(recording(seen), "127.0.0.1", 0)
        async with server, client_with(transport) as client:
            await some_calls(client, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        return seen

    async def both() -> tuple[Seen, Seen]:
        httpcore = await through(httpx.AsyncHTTPTransport(limits=limits))
        aiohttp = await through(Transport(verify=tls_context(), limits=limits))
        return httpcore, aiohttp

    httpcore, aiohttp = asyncio.run(both())
    assert len(aiohttp) == len(httpcore) == 7
    port = httpcore[0][1][0][1]  # the Host header differs only by the port
    for (line, headers, body), (line2, headers2, body2) in zip(httpcore, aiohttp, strict=True):
        assert line2 == line
        assert [(n, v) for n, v in headers2 if n != "Host"] == [
            (n, v) for n, v in headers if n != "Host"
        ]
        assert body2 == body
        assert headers[0][1] == port and headers2[0][0] == "Host"


def serve(handler: Handler, scenario: Callable[[str], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        async with server:
            return await scenario(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")

    return asyncio.run(go())


def test_an_upload_the_server_stops_reading_times_out_writing() -> None:
    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)  # ends with the test's event loop

    async def forever() -> AsyncIterator[bytes]:
        while True:
            yield b"\0" * SMALL_BODY

    async def scenario(base: str) -> str:
        client = new_client(2)
        try:
            with pytest.raises(RetriableError) as caught:
                await exchange(client, "PUT", f"{base}/upload", system="hris", stage="upload",
                               route="/upload", timeout=0.3, content=forever())  # fmt: skip
        finally:
            await client.aclose()
        return str(caught.value).replace(base.rsplit(":", 1)[1], "PORT")

    assert serve(never_reads, scenario) == (
        "timed out after 0.3s sending the request to 127.0.0.1:PORT"
    )


def test_a_slow_steady_upload_is_not_cut_short() -> None:
    """The write timeout is per chunk of a streamed body, as httpcore's is per socket write: a
    long upload (a document) that keeps moving completes."""
    received: list[int] = []

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        length = int(head.split("content-length: ")[1].split("\r\n")[0])
        while sum(received) < length:
            received.append(len(await reader.read(1024 * 1024)))
            if len(received) <= 20:  # slow at first: a second in all, twice the timeout
                await asyncio.sleep(0.05)
        writer.write(OK)
        await writer.drain()
        writer.close()

    async def document() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield b"\0" * SMALL_BODY

    async def scenario(base: str) -> int:
        async with new_client(2) as client:
            reply = await exchange(client, "POST", f"{base}/big", system="hris", stage="upload",
                                   route="/big", timeout=0.5, content=document(),
                                   headers={"Content-Length": str(256 * SMALL_BODY)})  # fmt: skip
        return reply.status

    assert serve(slow_reader, scenario) == 200


def test_pool_limits_hold() -> None:
    open_now, most = 0, 0
    release = asyncio.Event()

    async def holding(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await release.wait()
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            open_now -= 1

    async def scenario(base: str) -> list[int]:
        async with new_client(2) as client:
            calls = [asyncio.create_task(client.get(f"{base}/{n}")) for n in range(6)]
            while most < 2:
                await asyncio.sleep(0.01)
            release.set()
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert serve(holding, scenario) == [200] * 6
    assert most == 2


def test_retry_after_reaches_the_error() -> None:
    async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    async def scenario(base: str) -> float | None:
        async with new_client(2) as client:
            reply = await exchange(client, "GET", f"{base}/x", system="hris", stage="post",
                                   route="/x", timeout=2)  # fmt: skip
        with pytest.raises(RateLimitedError) as caught:
            raise_for_status(reply, success=frozenset({200}), retry_after_cap=60)
        return caught.value.retry_after

    assert serve(limited, scenario) == 7.0


def test_vcrpy_records_and_replays_the_traffic_of_our_clients(tmp_path: Path) -> None:
    """Fails if vcrpy stops seeing what the production transport sends: nothing would be
    recorded, or the replay would reach the (stopped) server."""
    cassette = str(tmp_path / "c.yaml")
    recorder = vcr.VCR(record_mode="once", match_on=["method", "path", "query", "body"])
    seen: Seen = []

    async def calls(base: str) -> list[tuple[int, bytes]]:
        async with new_client(2) as client:
            replies = [await client.get(f"{base}/a", params={"q": "1"}),
                       await client.post(f"{base}/b", json={"k": "v"})]  # fmt: skip
        return [(r.status_code, r.content) for r in replies]

    async def record() -> tuple[str, list[tuple[int, bytes]]]:
        server = await asyncio.start_server(recording(seen), "127.0.0.1", 0)
        async with server:
            base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            with recorder.use_cassette(cassette) as recorded:
                replies = await calls(base)
            assert len(recorded) == 2
        return base, replies

    base, live = asyncio.run(record())
    assert len(seen) == 2
    with recorder.use_cassette(cassette) as replayed:
        again = asyncio.run(calls(base))  # the server is gone: only the cassette can answer
        assert replayed.play_count == 2 and replayed.all_played
    assert again == live == [(200, b"{}"), (200, b"{}")]
    assert len(seen) == 2


def test_sentry_sends_no_trace_headers_to_remote_systems(ingest: tuple[Any, str]) -> None:
    """Sentry's aiohttp integration would add sentry-trace and baggage to every request to
    PageUp and the HRIS, as its httpx one would: both are disabled."""
    from worker import alerts
    from worker.settings import SentrySettings

    assert alerts.init_sentry(SentrySettings(dsn=ingest[1]))
    seen: Seen = []

    async def go() -> None:
        server = await asyncio.start_server(recording(seen), "127.0.0.1", 0)
        async with server, new_client(2) as client:
            await client.get(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x")

    asyncio.run(go())
    names = {name.lower() for name, _ in seen[0][1]}
    assert names == {"host", "accept", "accept-encoding", "connection", "user-agent"}


def test_the_client_keeps_no_cookie_a_remote_system_sets() -> None:
    seen: Seen = []
    sets_a_cookie = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: session=abc; Path=/\r\n"
                     b"Content-Type: application/json\r\n\r\n{}")  # fmt: skip

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                seen.append((head.split("\r\n")[0], [
                    (n, v) for n, _, v in (h.partition(": ") for h in head.split("\r\n")[1:] if h)
                ], b""))  # fmt: skip
                writer.write(sets_a_cookie)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def scenario(base: str) -> int:
        # By name: aiohttp's own jar ignores cookies from hosts given as IP addresses.
        base = base.replace("127.0.0.1", "localhost")
        async with new_client(2) as client:
            first = await client.get(f"{base}/login")
            await client.get(f"{base}/next")
            with pytest.raises(TypeError):
                client.cookies = {"session": "forced"}
            with pytest.raises(TypeError):
                client.cookies.set("session", "forced")
            return len(first.cookies)

    assert serve(handle, scenario) == 1, "the response itself still shows the cookie"
    assert [line for line, _h, _b in seen] == ["GET /login HTTP/1.1", "GET /next HTTP/1.1"]
    assert all(name.lower() != "cookie" for _l, headers, _b in seen for name, _v in headers)
