"""The organisation's own job records: an HTTP JSON endpoint, or files dropped in a folder.

A listing is "complete" only when every record could be read: only then may jobs missing from it
be closed in the ATS. A record without an id, or an id given twice, is reported and its job (if
any) is left as it is: never closed, never updated from an ambiguous record.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jmespath

from worker.errors import ConfigError, PermanentError
from worker.remote.auth import OutboundAuth
from worker.remote.http import exchange, raise_for_status, route_of
from worker.remote.retry import with_retries
from worker.settings import JobSourceSettings


@dataclass(frozen=True, slots=True)
class SourceJob:
    source_id: str
    record: dict[str, Any]
    origin: str  # where it came from: "jobs.csv row 3", "item 5"


@dataclass
class JobListing:
    jobs: list[SourceJob] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    held_ids: set[str] = field(default_factory=set)  # present but unusable: leave their jobs alone
    complete: bool = True


async def read_jobs(settings: JobSourceSettings, client: httpx.AsyncClient) -> JobListing:
    if settings.type == "http":
        records = await _http_records(settings, client)
        return _listing([(f"item {index + 1}", r) for index, r in enumerate(records)], settings)
    return read_directory(settings)


async def _http_records(settings: JobSourceSettings, client: httpx.AsyncClient) -> list[Any]:
    auth = OutboundAuth(settings.auth, client, system="job_source", retry=settings.retry)
    url = str(settings.url)

    async def once() -> Any:
        headers = {**settings.headers, **await auth.headers(), "Accept": "application/json"}
        reply = await exchange(client, "GET", url, system="job_source", stage="list_jobs",
                               route=route_of(url), timeout=settings.retry.timeout_seconds,
                               headers=headers)  # fmt: skip
        raise_for_status(reply, success=frozenset({200}), retry_after_cap=300.0)
        return reply.json()

    data = await with_retries(once, settings.retry)
    items = jmespath.search(settings.items_path, data)
    if not isinstance(items, list):
        raise PermanentError(
            f"the job source's reply has no list at {settings.items_path!r}",
            system="job_source", stage="list_jobs",
        )  # fmt: skip
    return items


def read_directory(settings: JobSourceSettings) -> JobListing:
    folder = settings.directory
    if folder is None or not folder.is_dir():
        raise ConfigError([f"ats.source.directory: {folder} is not a folder"])
    entries: list[tuple[str, Any]] = []
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in (".json", ".csv"):
            continue
        try:
            entries.extend(_file_records(path))
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
            problems.append(f"{path.name}: cannot be read: {str(exc).splitlines()[0][:200]}")
    listing = _listing(entries, settings)
    listing.problems[:0] = problems
    listing.complete = listing.complete and not problems
    return listing


def _file_records(path: Path) -> list[tuple[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
        return [(f"{path.name} item {i + 1}", item) for i, item in enumerate(items)]
    rows = csv.DictReader(text.splitlines())
    records = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        if None in row:
            raise ValueError(f"row {number} has more values than the header has columns")
        records.append((f"{path.name} row {number}", {k: v for k, v in row.items() if v != ""}))
    return records


def _listing(entries: list[tuple[str, Any]], settings: JobSourceSettings) -> JobListing:
    listing = JobListing()
    first_origin: dict[str, str] = {}
    for origin, record in entries:
        if not isinstance(record, dict):
            listing.problems.append(f"{origin}: not an object")
            listing.complete = False
            continue
        raw = record.get(settings.id_field)
        if not isinstance(raw, str | int) or isinstance(raw, bool) or str(raw).strip() == "":
            listing.problems.append(f"{origin}: no {settings.id_field!r}")
            listing.complete = False
            continue
        source_id = str(raw).strip()
        if source_id in first_origin:
            listing.problems.append(
                f"{origin}: {settings.id_field} {source_id!r} also in {first_origin[source_id]}"
            )
            listing.held_ids.add(source_id)
            continue
        first_origin[source_id] = origin
        listing.jobs.append(SourceJob(source_id, record, origin))
    listing.jobs = [job for job in listing.jobs if job.source_id not in listing.held_ids]
    return listing
