"""``hirebridge run`` as a subprocess, with its JSON log lines readable as events."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REPO


class Worker:
    """The service process, with its JSON log lines readable as events."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "unparsed", "line": line})

    def wait_for(self, event: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
        while True:
            found = self.events.get(timeout=timeout)
            self.seen.append(found)
            if found.get("event") == event and all(found.get(k) == v for k, v in fields.items()):
                return found

    def finished_events(self, timeout: float = 60) -> list[dict[str, Any]]:
        """Every event the process wrote, once it has exited."""
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        while not self.events.empty():
            self.seen.append(self.events.get_nowait())
        return self.seen


def apna_service(sims: Any, database: str, **service: Any) -> dict[str, Any]:
    """Settings for ``hirebridge run`` taking Apna leads (bearer ``t0k``) into the HRIS
    simulator's intake, on a free port, logging JSON; ``service`` adds to its section."""
    data: dict[str, Any] = sims.settings_data(database)
    intake = {"url": f"{sims.hris_url}/api/intake/leads",
              "auth": {"type": "api_key", "api_key": sims.hris.api_key},
              "mapping": str(REPO / "mappings" / "apna_leads.yaml")}  # fmt: skip
    data["inbound"] = {"apna": {"enabled": True, "auth": {"type": "bearer", "token": "t0k"},
                                "target": intake}}  # fmt: skip
    data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600}, **service}
    data["logging"] = {"format": "json"}
    return data


def push_burst(
    url: str, leads: list[dict[str, Any]], connections: int, after: Callable[[int], None]
) -> dict[int, int | None]:
    """POST every lead to ``url`` over ``connections`` keep-alive connections; each lead's
    status (None: no answer), and ``after(answers so far)`` after each."""
    answered: dict[int, int | None] = {}

    async def burst() -> None:
        queue = list(enumerate(leads))

        async def connection(client: httpx.AsyncClient) -> None:
            while queue:
                index, lead = queue.pop()
                try:
                    reply = await client.post(url, json=lead,
                                              headers={"Authorization": "Bearer t0k"})  # fmt: skip
                    answered[index] = reply.status_code
                except httpx.HTTPError:
                    answered[index] = None
                after(len(answered))

        async with httpx.AsyncClient(timeout=10) as client:
            await asyncio.gather(*(connection(client) for _ in range(connections)))

    asyncio.run(burst())
    return answered
