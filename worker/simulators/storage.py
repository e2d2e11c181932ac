"""The PageUp simulator's document storage: another listener (host:port) serving the download
links that ``GET /document/{id}`` hands out, as a pre-signed cloud storage link would.

- A link is ``/s/<token>``, which redirects once to ``/blob/<token>`` (so that clients follow a
  redirect); it expires ``expiry_seconds`` after it was handed out and is then answered 403, as
  S3 answers an expired pre-signed URL. ``expired_on_issue`` hands out links already expired.
- Documents are small generated PDFs, or (``large_bytes``) a PDF of that size generated as it
  streams, never held in memory. Tests swap in other bodies (``body``) or types, and can cut a
  body short (``cut_after``).
- Every request's headers are kept (``requests``): the tests check that no ``Authorization``
  header ever reaches this host.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

BLOCK = 64 * 1024
_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
           b"<Message>Request has expired</Message></Error>")  # fmt: skip


@dataclass
class SimDocument:
    """A document PageUp serves: a generated PDF unless ``body`` says otherwise."""

    document_id: str
    title: str = "Document"
    body: bytes | None = None
    large_bytes: int = 0  # > 0: a PDF of this many bytes, generated as it streams
    content_type: str = "application/pdf"

    def content(self) -> bytes:
        """The whole body (small documents only)."""
        return b"".join(self.chunks())

    def size(self) -> int:
        return self.large_bytes or len(self.body if self.body is not None else self._pdf())

    def chunks(self) -> Iterator[bytes]:
        if self.large_bytes:
            yield from large_pdf(self.document_id, self.large_bytes)
        else:
            yield self.body if self.body is not None else self._pdf()

    def _pdf(self) -> bytes:
        return small_pdf(f"Placeholder {self.title} {self.document_id}")


@dataclass
class StorageState:
    expiry_seconds: float = 5.0
    url: str = ""  # the listener's base URL, set once it started
    documents: dict[str, SimDocument] = field(default_factory=dict)
    links: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (doc, expiry)
    expired_on_issue: Counter[str] = field(default_factory=Counter)  # doc -> links to spoil
    refuse: dict[str, int] = field(default_factory=dict)  # doc -> status always answered
    # doc -> bytes sent before the connection drops (its full length still announced), once
    cut_after: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)  # headers of each request
    served: Counter[str] = field(default_factory=Counter)  # doc -> bodies served in full
    issued: Counter[str] = field(default_factory=Counter)  # doc -> links handed out

    def issue(self, document_id: str) -> str:
        """A fresh link to a document (PageUp's ``GET /document/{id}``)."""
        token = secrets.token_urlsafe(18)
        expires = time.monotonic() + self.expiry_seconds
        if self.expired_on_issue[document_id] > 0:
            self.expired_on_issue[document_id] -= 1
            expires = 0.0
        self.links[token] = (document_id, expires)
        self.issued[document_id] += 1
        return f"{self.url}/s/{token}?X-Sim-Signature={token[:8]}"


def build_app(states: StorageState | Sequence[StorageState]) -> Starlette:
    """The storage listener for one or several tenants' documents (tokens are unique)."""
    every = [states] if isinstance(states, StorageState) else list(states)

    def find(token: str) -> tuple[StorageState, str, float] | None:
        for state in every:
            if token in state.links:
                document_id, expires = state.links[token]
                return state, document_id, expires
        return None

    def keep_headers(request: Request) -> None:
        for state in every:
            state.requests.append({k.lower(): v for k, v in request.headers.items()})

    async def signed(request: Request) -> Response:
        keep_headers(request)
        token = request.path_params["token"]
        return RedirectResponse(f"/blob/{token}?{request.url.query}", status_code=302)

    async def blob(request: Request) -> Response:
        keep_headers(request)
        found = find(request.path_params["token"])
        if found is None or time.monotonic() >= found[2]:
            return Response(_DENIED, status_code=403, media_type="application/xml")
        state, document_id, _ = found
        document = state.documents.get(document_id)
        if document_id in state.refuse or document is None:
            return Response(b"", status_code=state.refuse.get(document_id, 404))

        cut = state.cut_after.pop(document_id, None)

        async def counted() -> AsyncIterator[bytes]:
            # An async generator: Starlette runs a plain one in a thread, a hop per block,
            # which made the simulator, not the client, the bottleneck of large downloads.
            if cut is not None:  # the announced length is never reached: the client sees a
                yield document.content()[:cut]  # body cut short, as a dropped connection
                return
            for chunk in document.chunks():
                yield chunk
            state.served[document_id] += 1

        headers = {"Content-Length": str(document.size())}
        return StreamingResponse(counted(), media_type=document.content_type, headers=headers)

    return Starlette(
        routes=[
            Route("/s/{token}", signed, methods=["GET"]),
            Route("/blob/{token}", blob, methods=["GET"]),
        ]
    )


def small_pdf(text: str) -> bytes:
    """A minimal valid one-page PDF showing ``text`` (ASCII), with a correct xref table."""
    safe = "".join(ch for ch in text if ch.isalnum() or ch in " -_.")
    stream = f"BT /F1 14 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def large_pdf(document_id: str, size: int) -> Iterator[bytes]:
    """``size`` bytes that start like a PDF, generated block by block (deterministic)."""
    head, tail = b"%PDF-1.4\n%", b"\n%%EOF\n"
    seed = hashlib.sha256(document_id.encode()).digest()
    block = (seed * (BLOCK // len(seed) + 1))[:BLOCK]
    left = size - len(head) - len(tail)
    yield head
    while left > 0:
        piece = block[: min(BLOCK, left)]
        left -= len(piece)
        yield piece
    yield tail
