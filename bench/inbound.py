"""Inbound push throughput: Apna leads from a load generator in another process, on loopback.

    python bench/inbound.py                   # 5000 leads over 32 connections (about 20 s)
    python bench/inbound.py --leads 20000 --connections 64

The server is hirebridge's own inbound endpoint (auth, limits, validation, dedup key, commit to
the SQLite inbox before the 200) under uvicorn, in its own process, plus a bare no-op endpoint
for comparison. The generator (this process) keeps ``--connections`` HTTP/1.1 keep-alive
connections busy with raw sockets, so that its own cost does not hide the server's. Printed:
requests/s, p50/p99 latency, the server process's CPU per request (all its threads), the ratio
to the no-op endpoint in the same run (of requests/s, and of CPU per request), and whether every
lead answered 200 is in the inbox exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"rps": 500.0, "p99_ms": 50.0, "ratio": 0.3}
USER, PASSWORD = "bench-apna", "bench-apna-password"


def serve(database: str, port_file: Path) -> None:
    """The server process: the inbound endpoint and a no-op, on a free loopback port."""
    sys.path.insert(0, str(REPO))
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from worker.inbound.server import APNA_SUCCESS, InboxWriter, inbound_routes
    from worker.observability import configure_logging
    from worker.service.server import server_config
    from worker.settings import DatabaseSettings, InboundSettings, ServiceSettings
    from worker.store.db import create_store_engine, migrate
    from worker.store.inbox import Inbox
    from worker.store.thread import StoreThread

    configure_logging("warning", "json")
    engine = create_store_engine(DatabaseSettings(url=database))
    migrate(engine)
    settings = InboundSettings(
        apna={"enabled": True, "auth": {"username": USER, "password": PASSWORD},
              "target": {"url": "https://unused.example.com", "mapping": "unused.yaml"}},
    )  # fmt: skip
    writer = InboxWriter(Inbox(engine), StoreThread(engine), stored=lambda: None)

    async def noop(request: Request) -> Response:
        await request.body()
        return JSONResponse(APNA_SUCCESS)

    routes = [*inbound_routes(settings, writer.add), Route("/-/noop", noop, methods=["POST"])]
    # The service's own server config: its header caps and request deadline are in the figures.
    app = Starlette(routes=routes)
    server = uvicorn.Server(server_config(app, ServiceSettings(port=0)))
    gc.freeze()  # as ``hirebridge run`` does once started (worker/runtime.py)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port_file.write_text(str(server.servers[0].sockets[0].getsockname()[1]))
        await task

    asyncio.run(run())


def request_bytes(path: str, body: bytes) -> bytes:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def load(
    port: int, requests: list[bytes], connections: int
) -> tuple[list[float], list[int], float]:
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for index, request in enumerate(requests):
        queue.put_nowait((index, request))
    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                try:
                    index, request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies[index] = time.perf_counter() - started
                statuses[index] = int(status_line.split()[1])
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, statuses, time.perf_counter() - started


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of the server process so far; 0 off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(
    port: int, pid: int, requests: list[bytes], connections: int
) -> tuple[list[float], list[int], float, float]:
    """``load``, and the server's CPU seconds per request meanwhile."""
    before = server_cpu(pid)
    latencies, statuses, wall = asyncio.run(load(port, requests, connections))
    return latencies, statuses, wall, (server_cpu(pid) - before) / len(requests)


def summary(name: str, latencies: list[float], wall: float, cpu: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    figures = {"rps": len(latencies) / wall, "p50_ms": statistics.median(ordered) * 1000,
               "p99_ms": p99 * 1000, "cpu_us": cpu * 1e6}  # fmt: skip
    print(f"{name:<22} {figures['rps']:>9.0f} {figures['p50_ms']:>9.1f} {figures['p99_ms']:>9.1f}"
          f" {figures['cpu_us']:>13.0f}")  # fmt: skip
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--serve", nargs=2, metavar=("DATABASE", "PORT_FILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], Path(args.serve[1]))
        return 0
    sys.path.insert(0, str(REPO))
    from sqlalchemy import create_engine, text

    from worker.simulators.apna import make_leads

    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{folder}/bench.sqlite"
        port_file = Path(folder) / "port"
        server = subprocess.Popen([sys.executable, __file__, "--serve", database, str(port_file)])
        try:
            while not port_file.exists() or not port_file.read_text():
                if server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.05)
            port = int(port_file.read_text())
            leads = make_leads(args.leads, seed=5)
            bodies = [json.dumps(lead).encode() for lead in leads]
            noop = [request_bytes("/-/noop", body) for body in bodies]
            real = [request_bytes("/inbound/apna", body) for body in bodies]
            asyncio.run(load(port, noop[:500], args.connections))  # warm-up
            cores = os.cpu_count()
            print(f"{args.leads} leads, {args.connections} connections, {cores} cores in all; "
                  f"load average {os.getloadavg()[0]:.2f}\n")  # fmt: skip
            print(
                f"{'endpoint':<22} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'server CPU us':>13}"
            )
            base_lat, _, base_wall, base_cpu = measured(port, server.pid, noop, args.connections)
            bare = summary("no-op", base_lat, base_wall, base_cpu)
            lat, statuses, wall, cpu = measured(port, server.pid, real, args.connections)
            stored = summary("/inbound/apna (SQLite)", lat, wall, cpu)
        finally:
            server.terminate()
            server.wait(timeout=30)
        engine = create_engine(database)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*), count(DISTINCT dedup_key), sum(repeats) FROM inbox")
            ).one()
        engine.dispose()
    answered = sum(1 for s in statuses if s == 200)
    print(f"\nratio to no-op:         {stored['rps'] / bare['rps']:.2f}")
    if stored["cpu_us"]:  # steadier than req/s on a shared machine: the generator's luck is out
        print(f"server CPU, no-op/push: {bare['cpu_us'] / stored['cpu_us']:.2f}")
    print(f"answered 200:           {answered} of {args.leads}; other statuses: "
          f"{sorted(set(statuses) - {200}) or 'none'}")  # fmt: skip
    print(f"in the inbox:           {rows[0]} rows, {rows[1]} distinct, {rows[2]} repeats")
    ratio = stored["rps"] / bare["rps"]
    ok = (ratio >= TARGETS["ratio"] and stored["p99_ms"] < TARGETS["p99_ms"]
          and answered == args.leads == rows[0] == rows[1] and not rows[2])  # fmt: skip
    print(
        f"targets (>= {TARGETS['ratio']} of the no-op route, p99 < {TARGETS['p99_ms']:.0f} ms, "
        f"none lost or duplicated): {'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
