"""The running worker's map reload (SIGHUP, POST /-/reload)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.conftest import REPO
from worker.demo import simulator_settings
from worker.mapping.loader import load_field_map
from worker.runtime import offer_worker
from worker.service.runner import Service
from worker.settings import Settings


def test_reload_refuses_a_map_with_a_key_given_twice_then_takes_the_fixed_one(
    tmp_path: Path,
) -> None:
    mapping = tmp_path / "map.yaml"
    shutil.copy(REPO / "mappings" / "example_hris.yaml", mapping)
    data = simulator_settings(
        "http://127.0.0.1:9", "http://127.0.0.1:9", f"sqlite:///{tmp_path / 's.sqlite'}",
        mapping=mapping,
    )  # fmt: skip
    settings = Settings(**data)

    async def reload_twice() -> tuple[tuple[bool, str], tuple[bool, str]]:
        async with offer_worker(settings) as worker:
            service = Service(settings, worker)
            text = mapping.read_text()
            mapping.write_text(text + "  email: offer.Applicant.Other\n")
            refused = await service.reload()
            mapping.write_text(text)
            return refused, await service.reload()

    (ok, problems), (ok_after, version) = asyncio.run(reload_twice())

    assert not ok
    lines = mapping.read_text().splitlines()
    first = next(n for n, line in enumerate(lines, 1) if line.startswith("  email:"))
    added = len(lines) + 1
    assert (
        f"{mapping}:{added}:3: duplicate key 'fields.email', first given at {mapping}:{first}:3"
        in problems
    )
    assert ok_after and version == f"hris {load_field_map(mapping).version}"
