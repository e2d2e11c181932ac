"""Sending one document to a target as multipart/form-data (BambooHR: the ``file`` part beside
``category``, ``fileName``, ``share``) or as JSON with the content in base64 at one field (some
payroll APIs).

The content comes from ``content``, a factory of the document's bytes from its start (called
again for each try): the download as it arrives, or its temporary file. Neither body is ever
held in memory: both are written around those bytes, with their length computed beforehand
from the document's size, so the target gets a Content-Length even while the document is still
arriving. The multipart body is written here rather than by httpx, whose encoder reads its
file parts with blocking reads, so it cannot send bytes that are still arriving.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from typing import IO, Any

from worker.sinks.http import Delivered, HttpSink

_MARK = "\x00hirebridge-document-content\x00"
Content = Callable[[], AsyncIterator[bytes]]


async def upload_multipart(
    sink: HttpSink, url: str, *, route: str, method: str, key: str, stage: str,
    file_field: str, file_name: str, mime: str, content: Content, size: int,
    fields: Mapping[str, str], record_id: Any = None,
) -> Delivered:  # fmt: skip
    """POST (or PUT) a multipart form: ``fields`` as text parts, then the file part."""
    stream, length, content_type = multipart_body(fields, file_field, file_name, mime, content,
                                                  size)  # fmt: skip
    headers = {"Content-Type": content_type, "Content-Length": str(length)}
    reply = await sink.send_body(url, route=route, idempotency_key=key, stage=stage,
                                 method=method, body=lambda: {"content": stream()},
                                 headers=headers)  # fmt: skip
    return Delivered(sink.record_id_of(reply, record_id), reply.status)


async def upload_json(
    sink: HttpSink, url: str, *, route: str, method: str, key: str, stage: str,
    content_at: tuple[str, ...], fields: Mapping[str, Any], content: Content, size: int,
    record_id: Any = None,
) -> Delivered:  # fmt: skip
    """A JSON body holding ``fields`` and, at ``content_at``, the file in base64."""
    stream, length = json_body_with_content(fields, content_at, content, size)
    headers = {"Content-Type": "application/json", "Content-Length": str(length)}
    reply = await sink.send_body(url, route=route, idempotency_key=key, stage=stage,
                                 method=method, body=lambda: {"content": stream()},
                                 headers=headers)  # fmt: skip
    return Delivered(sink.record_id_of(reply, record_id), reply.status)


def file_content(file: IO[bytes], chunk_bytes: int) -> Content:
    """The bytes of a local file from its start, in pieces (for a document already in)."""

    async def pieces() -> AsyncIterator[bytes]:
        file.seek(0)
        while chunk := file.read(chunk_bytes):
            yield chunk

    return pieces


def multipart_body(
    fields: Mapping[str, str], file_field: str, file_name: str, mime: str, content: Content,
    size: int,
) -> tuple[Callable[[], AsyncIterator[bytes]], int, str]:  # fmt: skip
    """A factory of a multipart/form-data body's pieces (RFC 7578: the text fields, then the
    file part), its length in bytes and its Content-Type with the boundary."""
    boundary = secrets.token_hex(16)
    head = b"".join(
        _part_head(boundary, f'name="{_quoted(name)}"') + value.encode() + b"\r\n"
        for name, value in fields.items()
    )
    disposition = f'name="{_quoted(file_field)}"; filename="{_quoted(file_name)}"'
    head += _part_head(boundary, disposition, mime)
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def stream() -> AsyncIterator[bytes]:
        yield head
        async for chunk in content():
            yield chunk
        yield tail

    return stream, len(head) + size + len(tail), f"multipart/form-data; boundary={boundary}"


def _part_head(boundary: str, disposition: str, mime: str | None = None) -> bytes:
    lines = [f"--{boundary}", f"Content-Disposition: form-data; {disposition}"]
    if mime is not None:
        lines.append(f"Content-Type: {mime}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _quoted(text: str) -> str:
    """A name or file name inside a quoted header parameter, escaped as browsers do (HTML's
    multipart/form-data encoding: LF, CR and double quote percent-encoded), in UTF-8."""
    return text.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


def json_body_with_content(
    fields: Mapping[str, Any], content_at: tuple[str, ...], content: Content, size: int
) -> tuple[Callable[[], AsyncIterator[bytes]], int]:
    """A factory of the body's pieces (each call starts again from the document's start) and
    the body's length in bytes."""
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

    async def stream() -> AsyncIterator[bytes]:
        yield head
        carry = b""  # base64 encodes whole 3-byte quanta, so that the pieces join cleanly
        async for chunk in content():
            data = carry + chunk if carry else chunk
            cut = len(data) - len(data) % 3
            if cut:
                yield base64.b64encode(data[:cut])
            carry = data[cut:]
        yield base64.b64encode(carry) + tail

    return stream, length
