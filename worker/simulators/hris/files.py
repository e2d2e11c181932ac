"""Employee files in the HRIS simulator: kept as their name, size, category and SHA-256 (the
content is hashed as it is read, never kept), listed back as each flavour lists them."""

from __future__ import annotations

import hashlib
from typing import IO, Any

from worker.simulators.hris.core import HrisState

CHUNK = 256 * 1024


def digest_of(file: IO[bytes]) -> tuple[int, str]:
    """The size and SHA-256 of a file read from its start, in pieces."""
    file.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := file.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def keep(state: HrisState, record_id: str, **facts: Any) -> dict[str, Any]:
    """Keep a file of ``record_id``; its id counts every file of the account."""
    kept = {"id": sum(len(f) for f in state.files.values()) + 1, **facts}
    state.files.setdefault(record_id, []).append(kept)
    if state.on_upload is not None:
        state.on_upload("stored", record_id)
    return kept


def duplicates(state: HrisState) -> int:
    """Files kept twice for one employee (same name and content)."""
    found = 0
    for files in state.files.values():
        seen = {(f.get("name"), f.get("sha256")) for f in files}
        found += len(files) - len(seen)
    return found
