"""The field-map workbench: read a target's map, check a candidate, preview an offer, apply and
roll back. Checks and previews go through the CLI's own functions (``load_field_map``,
``run_cases``, ``target_requests``, the routes); nothing here maps an offer by itself.

Apply writes the map atomically (a file beside it, then a rename), keeps the version it
replaces in ``.<map name>.versions/`` beside it, and asks the service to reload (which
validates every map again): a refused reload puts the previous text back.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.commands.maps import target_requests
from worker.console.context import ConsoleContext
from worker.console.masking import mask_payload, shown_paths
from worker.errors import ConfigError, MappingError
from worker.mapping.loader import FieldMap, load_field_map
from worker.mapping.testing import diff, run_cases
from worker.routing import choose_targets, compile_routes
from worker.sources.offer_document import preview_document

LINE = re.compile(r":(\d+):\d+\b")
VERSION_NAME = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{12}\.yaml$")  # when (to the µs), hash


def map_path(ctx: ConsoleContext, target: str) -> Path | None:
    section = ctx.settings().targets.get(target)
    return None if section is None else section.mapping


def versions_folder(path: Path) -> Path:
    return path.with_name(f".{path.name}.versions")


def check_text(text: str, path: Path) -> tuple[FieldMap | None, list[dict[str, Any]]]:
    """Validate a candidate map as if it were ``path``: the map, or its problems, each with the
    line it names (the text is checked from a temporary copy; problems name ``path``)."""
    with tempfile.TemporaryDirectory(prefix="hirebridge-map-") as folder:
        copy = Path(folder) / path.name
        copy.write_text(text, encoding="utf-8")
        try:
            field_map = load_field_map(copy)
        except ConfigError as exc:
            problems = [p.replace(str(copy), path.name) for p in exc.problems]
            return None, [{"line": _line(p), "problem": p} for p in problems]
    # Its mapping tests are the ones beside the real map.
    return dataclasses.replace(field_map, source=path), []


def _line(problem: str) -> int | None:
    found = LINE.search(problem)
    return int(found.group(1)) if found else None


def tests(field_map: FieldMap) -> list[dict[str, Any]]:
    """The map's sample cases (``<map>.tests/``). Their inputs are sample data, not people."""
    try:
        return [dataclasses.asdict(result) for result in run_cases(field_map)]
    except ConfigError as exc:
        return [{"name": "(cases)", "passed": False, "detail": "; ".join(exc.problems)}]


def writable(ctx: ConsoleContext, path: Path) -> tuple[bool, str]:
    """Whether apply is possible, and if not, what to do instead."""
    if not ctx.settings().console.allow_map_apply:
        return False, (
            "Applying from the console is off (console.allow_map_apply). Put the new map in "
            f"{path.name} where your deployment keeps it, then `hirebridge reload`."
        )
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return False, (
            f"{path} is read-only (a Kubernetes ConfigMap?). Update the ConfigMap with the "
            "candidate (your manifests or `kubectl create configmap ... --dry-run=client -o "
            "yaml | kubectl apply -f -`); the service reloads on SIGHUP or `hirebridge reload`."
        )
    return True, ""


async def view(ctx: ConsoleContext, target: str) -> dict[str, Any] | None:
    path = map_path(ctx, target)
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    field_map, problems = check_text(text, path)
    can_apply, how = writable(ctx, path)
    return {
        "target": target,
        "path": str(path),
        "lines": text.splitlines(),
        "version": field_map.version if field_map else None,
        "problems": problems,
        "tests": tests(field_map) if field_map else [],
        "can_apply": can_apply,
        "how_to_apply": how,
        "versions": saved_versions(path),
    }


def saved_versions(path: Path) -> list[str]:
    folder = versions_folder(path)
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if VERSION_NAME.match(p.name)), reverse=True)


async def fetch(ctx: ConsoleContext, source: str, offer_id: str) -> dict[str, Any]:
    """The offer's source document, fetched live from PageUp (nothing is written)."""
    parts = ctx.sources().get(source)
    if parts is None:
        raise ConfigError([f"unknown source {source!r}"])
    return await preview_document(parts.pageup, offer_id, parts.checks)


def payloads(
    ctx: ConsoleContext,
    source: str,
    document: Any,
    *,
    reveal: bool,
    maps: dict[str, FieldMap] | None = None,
) -> dict[str, Any]:
    """Per target the routes choose: its requests (masked unless ``reveal``), or why not."""
    settings = ctx.settings()
    try:
        chosen = list(choose_targets(compile_routes(settings.routes, source), document).targets)
    except MappingError as exc:
        return {"targets": [], "problems": exc.problems}
    found = []
    for name in chosen:
        field_map = (maps or {}).get(name) or load_field_map(settings.targets[name].mapping)
        entry: dict[str, Any] = {"target": name, "version": field_map.version}
        try:
            requests = target_requests(settings.targets[name], field_map, document)
            entry["requests"] = [
                {
                    **r,
                    "payload": r["payload"]
                    if reveal
                    else mask_payload(r["payload"], shown_paths(field_map, r["step"])),
                }
                for r in requests
            ]
        except MappingError as exc:
            entry["problems"] = exc.problems
        found.append(entry)
    return {"targets": found, "problems": []}


def payload_diff(
    settings_map: FieldMap, candidate: FieldMap, document: Any, *, reveal: bool
) -> str:
    """What the candidate changes in this offer's payload (values masked unless revealed)."""
    try:
        before: Any = _payload(settings_map, document)
        after: Any = _payload(candidate, document)
    except MappingError as exc:
        return "the offer cannot be mapped: " + "; ".join(exc.problems)
    if not reveal:
        before, after = _mask_changes(before, after)
    return diff(before, after, "current map", "candidate") or "no change in this offer's payload"


def _payload(field_map: FieldMap, document: Any) -> Any:
    from worker.mapping.engine import apply_map

    return apply_map(field_map, document).payload


def _mask_changes(before: Any, after: Any) -> tuple[Any, Any]:
    """Masked payloads that still show which values changed (a changed value reads
    "••• (changed)"), without showing any value."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(dict.fromkeys([*before, *after]))
        pairs = {k: _mask_changes(before.get(k), after.get(k)) for k in keys}
        return (
            {k: v[0] for k, v in pairs.items() if k in before},
            {k: v[1] for k, v in pairs.items() if k in after},
        )
    masked_before, masked_after = mask_payload(before), mask_payload(after)
    if before != after and masked_before == masked_after:
        masked_after = f"{masked_after} (changed)"
    return masked_before, masked_after


async def apply(ctx: ConsoleContext, target: str, text: str) -> dict[str, Any]:
    """Write a candidate over the target's map and reload; refused with its problems."""
    path = map_path(ctx, target)
    if path is None:
        return {"applied": False, "problems": [{"line": None, "problem": "unknown target"}]}
    can_apply, how = writable(ctx, path)
    if not can_apply:
        return {"applied": False, "problems": [{"line": None, "problem": how}]}
    field_map, problems = check_text(text, path)
    if field_map is None:
        return {"applied": False, "problems": problems}
    previous = path.read_text(encoding="utf-8")
    kept = _keep(path, previous, ctx.settings().console.map_versions_kept)
    _write(path, text)
    reloaded, detail = await ctx.reload()
    if not reloaded:
        _write(path, previous)
        await ctx.reload()
        return {"applied": False, "problems": [{"line": _line(detail), "problem": detail}]}
    return {"applied": True, "version": field_map.version, "kept": kept, "problems": []}


async def rollback(ctx: ConsoleContext, target: str, version: str) -> dict[str, Any]:
    path = map_path(ctx, target)
    if path is None or not VERSION_NAME.match(version):
        return {"applied": False, "problems": [{"line": None, "problem": "unknown version"}]}
    saved = versions_folder(path) / version
    if not saved.is_file():
        return {"applied": False, "problems": [{"line": None, "problem": "unknown version"}]}
    return await apply(ctx, target, saved.read_text(encoding="utf-8"))


def _keep(path: Path, text: str, how_many: int) -> str:
    from hashlib import sha256

    folder = versions_folder(path)
    folder.mkdir(exist_ok=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}Z-{sha256(text.encode()).hexdigest()[:12]}.yaml"
    _write(folder / name, text)
    for old in saved_versions(path)[how_many:]:
        (folder / old).unlink(missing_ok=True)
    return name


def _write(path: Path, text: str) -> None:
    """Atomically: a file beside it, flushed, then renamed over it."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
