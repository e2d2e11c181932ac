"""The upload bodies written around a document's bytes: their announced length is exact, and a
multipart parser (python-multipart, Starlette's) reads back the fields and the file."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import python_multipart

from worker.sinks.uploads import json_body_with_content, multipart_body

CONTENT = b"%PDF-1.4\n" + bytes(range(256)) * 41 + b"\n%%EOF\n"


def _pieces(data: bytes, size: int):  # type: ignore[no-untyped-def]
    async def content() -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    return content


def _joined(stream) -> bytes:  # type: ignore[no-untyped-def]
    async def go() -> bytes:
        return b"".join([piece async for piece in stream()])

    return asyncio.run(go())


def test_a_multipart_body_is_as_long_as_announced_and_parses_back() -> None:
    fields = {"category": "18", "fileName": 'contract "signed".pdf', "share": "no"}
    stream, length, content_type = multipart_body(
        fields, "file", 'contract "signed".pdf', "application/pdf", _pieces(CONTENT, 1000),
        len(CONTENT),
    )  # fmt: skip
    body = _joined(stream)
    assert len(body) == length
    parsed: dict[str, bytes] = {}
    names: list[bytes | None] = []

    def on_field(field: python_multipart.multipart.Field) -> None:
        parsed[(field.field_name or b"").decode()] = field.value or b""

    def on_file(file: python_multipart.multipart.File) -> None:
        file.file_object.seek(0)
        parsed[(file.field_name or b"").decode()] = file.file_object.read()
        names.append(file.file_name)

    headers = {"Content-Type": content_type.encode(), "Content-Length": str(length).encode()}
    parser = python_multipart.create_form_parser(headers, on_field, on_file)
    parser.write(body)
    parser.finalize()
    assert parsed == {"category": b"18", "fileName": b'contract "signed".pdf', "share": b"no",
                      "file": CONTENT}  # fmt: skip
    assert names == [b"contract %22signed%22.pdf"]


def test_a_json_body_joins_base64_pieces_cut_anywhere() -> None:
    for piece in (1, 2, 3, 7, 4096):
        stream, length = json_body_with_content(
            {"fileName": "x.pdf", "meta": {"kind": "Contract"}}, ("meta", "content"),
            _pieces(CONTENT, piece), len(CONTENT),
        )  # fmt: skip
        body = _joined(stream)
        assert len(body) == length, piece
        decoded = json.loads(body)
        assert base64.b64decode(decoded["meta"]["content"]) == CONTENT
        assert decoded["fileName"] == "x.pdf"
