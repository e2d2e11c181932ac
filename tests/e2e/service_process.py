"""``hirebridge run`` as a subprocess, with its JSON log lines readable as events."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


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
