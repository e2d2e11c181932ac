"""A document's upload overlapping its download (``worker.sources.incoming``), against the
simulators: the upload starts before the checksum is known, a download cut short aborts the
upload without a file in the HRIS, and the retry (store-and-forward, looked up first) leaves
each document in once."""

from __future__ import annotations

import hashlib
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
    # Recorded "posting" with its announced size before the first byte went out, and no
    # checksum yet: the upload began while the document was still arriving.
    assert seen == [("posting", None, LARGE)]
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
