"""A document's upload overlapping its download (``worker.sources.incoming``), against the
simulators: the upload starts before the checksum is known, a download cut short aborts the
upload without a file in the HRIS, and the retry (store-and-forward, looked up first) leaves
each document in once."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from tests.pipelines.test_documents import (
    BAMBOO,
    FILE_NAMES,
    doc_settings,
    documents_of,
    ids_of,
    record_of,
)
from tests.pipelines.test_offers import run_sync
from worker.runtime import open_store
from worker.simulators.storage import SimDocument
from worker.store.documents import DocumentLedger

LARGE = 3 * 1024 * 1024


def _large_contract(sims: Any) -> str:
    contract, _ = ids_of(sims, 0)
    sims.pageup.storage.documents[contract] = SimDocument(contract, large_bytes=LARGE)
    sims.samples[0].offer["Documents"][0]["FileSizeKB"] = LARGE // 1024
    return contract


@pytest.mark.parametrize("sims", [{**BAMBOO, "offers": 1}], indirect=True)
def test_the_upload_starts_before_the_document_is_all_in(sims: Any, db_url: str) -> None:
    contract = _large_contract(sims)
    settings = doc_settings(sims, db_url)
    engine = open_store(settings)
    seen: list[tuple[str, str | None, int | None]] = []

    def at_upload(stage: str, record_id: str) -> None:
        if stage == "start" and not seen:  # the contract is sent first
            row = next(r for r in DocumentLedger(engine).of("pageup", str(sims.samples[0].offer_id))
                       if r.document_id == contract)  # fmt: skip
            seen.append((row.status, row.sha256, row.size_bytes))

    sims.hris.on_upload = at_upload
    try:
        report = run_sync(settings)
    finally:
        engine.dispose()

    assert report.ok and report.succeeded == 1
    # Recorded "posting" before the first byte went out (committed while the download opened),
    # with no checksum or size yet: the upload began while the document was still arriving.
    assert seen == [("posting", None, None)]
    expected = hashlib.sha256(sims.pageup.storage.documents[contract].content()).hexdigest()
    row = next(r for r in documents_of(settings, str(sims.samples[0].offer_id))
               if r.document_id == contract)  # fmt: skip
    assert (row.status, row.sha256, row.size_bytes) == ("done", expected, LARGE)
    first = sims.hris.files[record_of(sims, 0)][0]
    assert (first["name"], first["sha256"], first["size"]) == (FILE_NAMES[0], expected, LARGE)


@pytest.mark.parametrize("sims", [{**BAMBOO, "offers": 1}], indirect=True)
def test_a_download_cut_short_aborts_the_upload_and_the_retry_sends_it_once(
    sims: Any, db_url: str
) -> None:
    contract = _large_contract(sims)
    sims.pageup.storage.cut_after[contract] = LARGE // 3
    settings = doc_settings(sims, db_url, documents={"retry": {"attempts": 1}})

    first = run_sync(settings)

    offer_id = str(sims.samples[0].offer_id)
    assert not first.ok and sims.pageup.processed[offer_id] == 0
    assert sims.hris.calls["post_file"] == 2, "the contract's upload had started (and the letter)"
    kept = [f["name"] for f in sims.hris.files[record_of(sims, 0)]]
    assert kept == [FILE_NAMES[1]], "the contract's upload was aborted: no file kept"
    row = next(r for r in documents_of(settings, offer_id) if r.document_id == contract)
    assert row.status == "failed" and row.sha256 is None

    second = run_sync(settings)

    assert second.ok and sims.pageup.processed[offer_id] == 1
    names = [f["name"] for f in sims.hris.files[record_of(sims, 0)]]
    assert sorted(names) == sorted(FILE_NAMES), "each document once"
    assert sims.hris.calls["list_files"] >= 1, "tried before: looked up before it is resent"
    row = next(r for r in documents_of(settings, offer_id) if r.document_id == contract)
    assert row.status == "done" and row.size_bytes == LARGE


@pytest.mark.parametrize("sims", [{**BAMBOO, "offers": 1}], indirect=True)
def test_posting_commits_while_the_download_opens_and_before_the_first_byte(
    sims: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "posting" record's commit overlaps asking for the link and opening the download
    (the storage is asked while it is still being written), yet the upload waits for it."""
    contract = _large_contract(sims)
    settings = doc_settings(sims, db_url)
    storage = sims.pageup.storage
    real = DocumentLedger.posting
    seen: list[tuple[int, int]] = []

    def posting(self: DocumentLedger, ref: Any, **values: Any) -> None:
        if ref.document_id == contract and not seen:
            links_before = storage.issued[contract]
            # In the store's thread: hold the commit until the download of the contract
            # reached the storage (it would never come if the download waited for it).
            deadline = time.monotonic() + 10
            while storage.issued[contract] == 0 or not storage.requests:
                assert time.monotonic() < deadline, "the download waited for the record"
                time.sleep(0.001)
            seen.append((links_before, sims.hris.calls["post_file"]))
        real(self, ref, **values)

    monkeypatch.setattr(DocumentLedger, "posting", posting)
    report = run_sync(settings)

    assert report.ok and report.succeeded == 1
    # Recorded before the link was asked for, committed once the storage was asked, and
    # nothing uploaded before it committed.
    assert seen == [(0, 0)]
    files = sims.hris.files[record_of(sims, 0)]
    assert sorted(f["name"] for f in files) == sorted(FILE_NAMES), "each document once"


@pytest.mark.parametrize("sims", [{**BAMBOO, "offers": 1}], indirect=True)
def test_a_download_refused_before_any_byte_went_out_is_sent_once_by_the_retry(
    sims: Any, db_url: str
) -> None:
    """Its "posting" (written while the download opened) is followed by no byte: the document
    is recorded failed, and the next try treats it as tried (looked up, then sent once)."""
    contract = _large_contract(sims)
    sims.pageup.storage.refuse[contract] = 500
    settings = doc_settings(sims, db_url, documents={"retry": {"attempts": 1}})
    offer_id = str(sims.samples[0].offer_id)

    first = run_sync(settings)

    assert not first.ok and sims.pageup.processed[offer_id] == 0
    assert [f["name"] for f in sims.hris.files[record_of(sims, 0)]] == [FILE_NAMES[1]]
    row = next(r for r in documents_of(settings, offer_id) if r.document_id == contract)
    assert (row.status, row.sha256, row.size_bytes, row.http_status) == ("failed", None, None,
                                                                        500)  # fmt: skip

    del sims.pageup.storage.refuse[contract]
    second = run_sync(settings)

    assert second.ok and sims.pageup.processed[offer_id] == 1
    names = [f["name"] for f in sims.hris.files[record_of(sims, 0)]]
    assert sorted(names) == sorted(FILE_NAMES), "each document once"
    assert sims.hris.calls["list_files"] >= 1, "tried before: looked up before it is sent"
    row = next(r for r in documents_of(settings, offer_id) if r.document_id == contract)
    expected = hashlib.sha256(sims.pageup.storage.documents[contract].content()).hexdigest()
    assert (row.status, row.sha256, row.size_bytes) == ("done", expected, LARGE)
