"""Sending one document to a target, streamed from its temporary file: as multipart/form-data
(BambooHR: the ``file`` part beside ``category``, ``fileName``, ``share``) or as JSON with the
content in base64 at one field (some payroll APIs). Neither holds the file in memory: httpx reads
a multipart file part in 64 KiB pieces, and the JSON body is written around base64 pieces with
its length computed beforehand."""

from __future__ import annotations

import base64
import copy
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from typing import IO, Any

from worker.sinks.http import Delivered, HttpSink

_MARK = "\x00hirebridge-document-content\x00"


async def upload_multipart(
    sink: HttpSink, url: str, *, route: str, method: str, key: str, stage: str,
    file_field: str, file_name: str, mime: str, file: IO[bytes], fields: Mapping[str, str],
    record_id: Any = None,
) -> Delivered:  # fmt: skip
    """POST (or PUT) a multipart form: ``fields`` as text parts, then the file part."""

    def body() -> Mapping[str, Any]:
        file.seek(0)
        return {"form": dict(fields), "files": {file_field: (file_name, file, mime)}}

    reply = await sink.send_body(url, route=route, idempotency_key=key, stage=stage,
                                 method=method, body=body)  # fmt: skip
    return Delivered(sink.record_id_of(reply, record_id), reply.status)


async def upload_json(
    sink: HttpSink, url: str, *, route: str, method: str, key: str, stage: str,
    content_at: tuple[str, ...], fields: Mapping[str, Any], file: IO[bytes], size: int,
    chunk_bytes: int, record_id: Any = None,
) -> Delivered:  # fmt: skip
    """A JSON body holding ``fields`` and, at ``content_at``, the file in base64."""
    stream, length = json_body_with_content(fields, content_at, file, size, chunk_bytes)
    headers = {"Content-Type": "application/json", "Content-Length": str(length)}
    reply = await sink.send_body(url, route=route, idempotency_key=key, stage=stage,
                                 method=method, body=lambda: {"content": stream()},
                                 headers=headers)  # fmt: skip
    return Delivered(sink.record_id_of(reply, record_id), reply.status)


def json_body_with_content(
    fields: Mapping[str, Any], content_at: tuple[str, ...], file: IO[bytes], size: int,
    chunk_bytes: int,
) -> tuple[Callable[[], AsyncIterator[bytes]], int]:  # fmt: skip
    """A factory of the body's pieces (each call starts again from the file's start) and the
    body's length in bytes."""
    body: dict[str, Any] = copy.deepcopy(dict(fields))
    node = body
    for part in content_at[:-1]:
        child = node.setdefault(part, {})
        node = child if isinstance(child, dict) else node
    node[content_at[-1]] = _MARK
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    prefix, _, suffix = text.partition(json.dumps(_MARK))
    head, tail = (prefix + '"').encode(), ('"' + suffix).encode()
    length = len(head) + 4 * math.ceil(size / 3) + len(tail)
    piece = max(3, chunk_bytes - chunk_bytes % 3)  # whole base64 quanta: pieces join cleanly

    async def stream() -> AsyncIterator[bytes]:
        yield head
        file.seek(0)
        while chunk := file.read(piece):
            yield base64.b64encode(chunk)
        yield tail

    return stream, length
