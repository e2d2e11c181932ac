"""Offer documents (``documents``): what hirebridge accepts from PageUp's download links.

Where PageUp's document endpoint is, and where its reply holds the link, are per source
(``sources.<name>.paths.document`` and ``document_url_path``); these limits are the
deployment's, whatever the tenant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from worker.settings.common import RetrySettings, Section

MIB = 1024 * 1024
# MIME type -> the extensions a file of that type may have. Every type here is one whose
# content the check recognises by its first bytes (a PDF starts with %PDF).
DEFAULT_TYPES: dict[str, list[str]] = {
    "application/pdf": ["pdf"],
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ["docx"],
    "application/msword": ["doc"],
    "image/png": ["png"],
    "image/jpeg": ["jpg", "jpeg"],
}


class DocumentSettings(Section):
    # A larger document (declared by PageUp, announced by the storage, or counted while it
    # streams) is refused: the offer parks if the document is required. BambooHR takes 20 MiB.
    max_bytes: int = Field(20 * MIB, ge=1)
    types: dict[str, list[str]] = DEFAULT_TYPES
    # Redirects followed from a download link (each to http(s) only); more is a failure.
    max_redirects: int = Field(3, ge=0, le=10)
    # Plain-http download links (simulators, tests); a real storage link is https.
    allow_http: bool = False
    # Where downloads spool while they move (unnamed files: nothing stays behind, even after a
    # crash); null: the system's temporary folder. Space needed: lanes x max_bytes.
    temp_dir: Path | None = None
    # Bytes hashed and written to the temporary file at a time while a document streams (one
    # hand-off to its thread), and read from it at a time to send it again.
    chunk_bytes: int = Field(256 * 1024, ge=4096, le=16 * MIB)
    # Per download or upload: transient failures are retried; timeout_seconds is per read.
    retry: RetrySettings = RetrySettings(timeout_seconds=60)

    @model_validator(mode="after")
    def _types_are_lists(self) -> Self:
        problems = []
        for mime, extensions in self.types.items():
            if "/" not in mime or mime != mime.strip().lower():
                problems.append(f"types: {mime!r} is not a lower-case MIME type (type/subtype)")
            if not extensions or any(e != e.strip(". ").lower() or not e for e in extensions):
                problems.append(
                    f"types.{mime}: give lower-case extensions without a dot, e.g. [pdf]"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def extensions_of(self, mime: str) -> list[str]:
        return self.types.get(mime.strip().lower(), [])
