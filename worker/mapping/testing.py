"""Mapping tests that admins keep beside a map, and payload diffs.

Beside ``mappings/foo.yaml``, the folder ``mappings/foo.tests/`` holds cases: ``NAME.input.json``
(a source document) with either ``NAME.expected.json`` (the payload it must give) or
``NAME.expected-errors.txt`` (one line per text the mapping error must contain).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.errors import ConfigError, MappingError
from worker.mapping.engine import apply_map
from worker.mapping.loader import FieldMap


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    detail: str


def cases_folder(map_path: Path) -> Path:
    return map_path.with_name(map_path.stem + ".tests")


def run_cases(field_map: FieldMap) -> list[CaseResult]:
    folder = cases_folder(field_map.source)
    return [_run(field_map, path) for path in sorted(folder.glob("*.input.json"))]


def _run(field_map: FieldMap, input_path: Path) -> CaseResult:
    name = input_path.name.removesuffix(".input.json")
    expected_path = input_path.with_name(f"{name}.expected.json")
    errors_path = input_path.with_name(f"{name}.expected-errors.txt")
    document = _json(input_path)
    try:
        payload: Any = apply_map(field_map, document).payload
        problems = None
    except MappingError as exc:
        payload, problems = None, exc.problems
    if errors_path.exists():
        wanted = [line for line in errors_path.read_text().splitlines() if line.strip()]
        if problems is None:
            return CaseResult(name, False, "expected a mapping error, got a payload")
        missing = [w for w in wanted if not any(w in p for p in problems)]
        detail = "\n".join(f"missing error: {w}" for w in missing) + "\n" + "\n".join(problems)
        return CaseResult(name, not missing, detail.strip() if missing else "")
    if not expected_path.exists():
        raise ConfigError([f"{input_path}: no {expected_path.name} or {errors_path.name}"])
    if problems is not None:
        return CaseResult(name, False, "mapping failed:\n" + "\n".join(problems))
    expected = _json(expected_path)
    if payload == expected:
        return CaseResult(name, True, "")
    return CaseResult(name, False, diff(expected, payload, "expected", "mapped"))


def diff(before: Any, after: Any, before_name: str, after_name: str) -> str:
    """A unified diff of two payloads as sorted, indented JSON ("" when equal)."""
    return "\n".join(
        difflib.unified_diff(
            _pretty(before).splitlines(),
            _pretty(after).splitlines(),
            fromfile=before_name,
            tofile=after_name,
            lineterm="",
        )
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{path}: not a readable JSON document: {exc}"]) from None
