"""``hirebridge applications export``: one job's applications through a target's applications
map, into a CSV or JSON Lines file for HR ops. Only what the map selects is written (personal
data only when the map maps it); nothing is sent to the target and nothing is recorded.

The file is created with mode 0600 (it may hold personal data) and written whole under a
temporary name, then renamed: a failed export leaves no half file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.errors import HirebridgeError
from worker.mapping.engine import apply_map, step_applies
from worker.mapping.loader import FieldMap
from worker.redact import scrub_text
from worker.sources.applications import ApplicationChecks, JobRef, fetch_application
from worker.sources.pageup import PageUpClient


@dataclass
class ExportReport:
    written: int = 0
    not_chosen: int = 0
    problems: list[str] = field(default_factory=list)


async def export_job(
    pageup: PageUpClient, checks: ApplicationChecks, job: JobRef, field_map: FieldMap,
    fmt: str, out: Path,
) -> ExportReport:  # fmt: skip
    """Write ``job``'s applications as ``fmt`` (csv or jsonl) to ``out``. A job PageUp cannot
    list raises; an application that cannot be fetched or mapped is named in the report."""
    report = ExportReport()
    listing = checks.listing(await pageup.list_applications(job.job_id, external=job.external),
                             job)  # fmt: skip
    report.problems += listing.invalid
    rows: list[Any] = []
    for ref in listing.applications:
        try:
            document = await fetch_application(pageup, job, ref, checks)
            if field_map.when is not None and not step_applies(
                field_map, field_map.steps[0], document
            ):
                report.not_chosen += 1
                continue
            rows.append(apply_map(field_map, document).payload)
        except HirebridgeError as exc:
            report.problems.append(f"application {ref.application_id}: {scrub_text(str(exc))}")
    columns = [rule.target for rule in field_map.steps[0].rules]
    render: Callable[[list[Any], list[str]], str] = _csv if fmt == "csv" else _jsonl
    _write_private(out, render(rows, columns))
    report.written = len(rows)
    return report


def _csv(rows: list[Any], columns: list[str]) -> str:
    """One column per map field (dotted names for nested ones); objects and lists as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(_dig(row, column)) for column in columns])
    return buffer.getvalue()


def _jsonl(rows: list[Any], _columns: list[str]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


def _dig(payload: Any, dotted: str) -> Any:
    value = payload
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write_private(out: Path, text: str) -> None:
    partial = out.with_name(f".{out.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
