"""Employee files in the HRIS simulator: kept as their name, size, category and SHA-256 (the
content is hashed as it is read, never kept), listed back as each flavour lists them."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from worker.simulators.hris.core import HrisState


class Digest:
    """Where an uploaded file's bytes go: counted and hashed as they arrive, never kept.

    Starlette's own form parser spools a file part to a temporary file, and once it is past
    1 MiB hands every piece to a thread to write it: on a 2-core machine, that thread hop per
    piece made the simulator, not the client, the slow end of a large upload."""

    _rolled = False  # UploadFile's test for "in memory": writes are then called directly

    def __init__(self) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        return None

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


class _DigestingParser(MultiPartParser):
    """Starlette's multipart parser (same limits, same errors), a ``Digest`` for each file."""

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        if part.file is not None:
            self._files_to_close_on_error.pop().close()  # the spooled file it made: unused
            part.file = UploadFile(file=Digest(), size=0, filename=part.file.filename,  # type: ignore[arg-type]
                                   headers=part.file.headers)  # fmt: skip


async def read_form(request: Request, *, max_files: int, max_fields: int) -> FormData:
    """``request.form()`` as Starlette reads it (a malformed body is its 400), with each file
    part's content a ``Digest`` instead of a spooled file (``digest_of`` gives its facts)."""
    content_type, _ = parse_options_header(request.headers.get("Content-Type"))
    if content_type != b"multipart/form-data":
        return await request.form(max_files=max_files, max_fields=max_fields)
    parser = _DigestingParser(Headers(raw=request.headers.raw), request.stream(),
                              max_files=max_files, max_fields=max_fields)  # fmt: skip
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(status_code=400, detail=exc.message) from None


@contextlib.asynccontextmanager
async def aclosing_form(form: FormData) -> AsyncIterator[FormData]:
    """The form for the block, its files closed afterwards (as ``async with request.form()``)."""
    try:
        yield form
    finally:
        await form.close()


def digest_of(file: UploadFile) -> tuple[int, str]:
    """The size and SHA-256 of a file part ``read_form`` received."""
    digest = file.file
    assert isinstance(digest, Digest)
    return digest.size, digest.sha256


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
