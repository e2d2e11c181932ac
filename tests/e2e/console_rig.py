"""``hirebridge run`` with its console on, against the simulators, and Debian's Chromium driven by
Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO, Sims
from tests.e2e.service_process import Worker
from worker.console.auth import hash_password

CHROMIUM = "/usr/bin/chromium"
PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1", "ada": "admin-password-1"}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}
SECRET = "e2e-console-session-secret-0123456789"


@dataclass
class Served:
    worker: Worker
    base: str
    mapping: Path
    sims: Sims


def console_config(
    sims: Sims, folder: Path, sections: dict[str, Any] | None = None, **console: Any
) -> tuple[Path, Path]:
    """The service's settings: ``sections`` are other top-level sections (ats, inbound...),
    the keyword arguments the console's."""
    mapping = folder / "example_hris.yaml"
    shutil.copy(REPO / "mappings" / "example_hris.yaml", mapping)
    shutil.copytree(REPO / "mappings" / "example_hris.tests", folder / "example_hris.tests")
    data = sims.settings_data(f"sqlite:///{folder / 'state.sqlite'}")
    data["hris"]["mapping"] = str(mapping)
    # One run at start; later runs only when asked for ("run now").
    data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600},
                       "shutdown_grace_seconds": 10, **console.pop("service", {})}  # fmt: skip
    data["logging"] = {"format": "json"}
    for name, values in (sections or {}).items():
        data.setdefault(name, {}).update(values)
    users = {u: {"password_hash": hash_password(p), "role": ROLES[u]} for u, p in PASSWORDS.items()}
    data["console"] = {"enabled": True, "session_secret": SECRET, "users": users, **console}
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    return config, mapping


@contextmanager
def served(
    sims: Sims, folder: Path, sections: dict[str, Any] | None = None, **console: Any
) -> Iterator[Served]:
    config, mapping = console_config(sims, folder, sections, **console)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIREBRIDGE_")}
    worker = Worker(config, env)
    try:
        port = worker.wait_for("service_started")["port"]
        worker.wait_for("run_finished")
        yield Served(worker, f"http://127.0.0.1:{port}", mapping, sims)
    finally:
        worker.process.terminate()
        worker.finished_events(timeout=30)


def seen_or_wait(worker: Worker, event: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
    """An event the worker already wrote (while waiting for another), or the next one."""
    for found in worker.seen:
        if found.get("event") == event and all(found.get(k) == v for k, v in fields.items()):
            return found
    return worker.wait_for(event, timeout, **fields)
