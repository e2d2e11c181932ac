"""CPU per request of the transports httpx can run on, side by side against one loopback server.

    python bench/transports.py               # 3000 GETs each, 16 in flight (about 20 s)

The server is the PageUp simulator, in another process, without added latency. Printed per
transport: CPU ms per request in this process, the ratio to bare aiohttp (no httpx at all,
measured in the same run) and requests/s (bounded by the simulator, so only a hint).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from worker.remote.lanes import CONNECTIONS_PER_LANE, new_client  # noqa: E402


async def drive(
    get: Callable[[], Awaitable[Any]], requests: int, inflight: int
) -> tuple[float, float]:
    """(CPU ms per request, requests/s) of ``requests`` calls, ``inflight`` at a time."""
    for _ in range(50):  # warm the pools
        await get()
    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            await get()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return 1000 * (time.process_time() - cpu) / requests, requests / (time.perf_counter() - wall)


async def measure(url: str, requests: int, inflight: int) -> dict[str, tuple[float, float]]:
    results = {}
    async with httpx.AsyncClient() as client:
        results["httpcore, one shared pool"] = await drive(lambda: client.get(url), requests,
                                                           inflight)  # fmt: skip
    limits = httpx.Limits(max_connections=CONNECTIONS_PER_LANE,
                          max_keepalive_connections=CONNECTIONS_PER_LANE)  # fmt: skip
    lanes = [httpx.AsyncClient(limits=limits) for _ in range(inflight)]
    taken: dict[int, httpx.AsyncClient] = {}

    async def lane_get() -> httpx.Response:
        task = id(asyncio.current_task())
        return await taken.setdefault(task, lanes[len(taken) % inflight]).get(url)

    results["httpcore, a pool per lane"] = await drive(lane_get, requests, inflight)
    for lane in lanes:
        await lane.aclose()
    async with new_client(inflight * 2) as client:
        results["httpx-aiohttp (in use)"] = await drive(lambda: client.get(url), requests,
                                                        inflight)  # fmt: skip
    async with aiohttp.ClientSession() as session:

        async def bare() -> bytes:
            async with session.get(url) as response:
                return await response.read()

        results["bare aiohttp (no httpx)"] = await drive(bare, requests, inflight)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--inflight", type=int, default=16)
    args = parser.parse_args()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "worker", "simulate", "--offers", "10", "--latency-ms", "0"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert simulator.stdout is not None
    try:
        url = json.loads(simulator.stdout.readline())["pageup"] + "/_sim/stats"
        results = asyncio.run(measure(url, args.requests, args.inflight))
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    print(f"{args.requests} GETs per transport, {args.inflight} in flight, "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    floor = results["bare aiohttp (no httpx)"][0]
    print(f"{'transport':<28} {'CPU ms/request':>14} {'x bare aiohttp':>14} {'req/s':>7}")
    for name, (cpu, rate) in results.items():
        print(f"{name:<28} {cpu:>14.3f} {cpu / floor:>14.2f} {rate:>7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
