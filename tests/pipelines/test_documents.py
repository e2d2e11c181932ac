"""Offer documents into the employee file, against the simulators over loopback HTTP: the
BambooHR flavour (multipart, listed files, no idempotency key) and the generic one (JSON with
base64 content, the key honoured)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, FakeIngest, Sims
from tests.pipelines.test_offers import Crash, ledger_states, run_sync
from worker import alerts, metrics
from worker.cli import main
from worker.runtime import open_store
from worker.settings import Settings
from worker.simulators.storage import SimDocument
from worker.store.documents import DocumentLedger, DocumentState
from worker.store.interventions import Interventions, OfferKey
from worker.store.ledger import Ledger

BAMBOO = {"offers": 3, "target": "bamboohr"}
# lease_seconds: on PostgreSQL a crashed run's claims hold until they expire (SQLite frees them).
FAST = {"retry_backoff_initial_seconds": 0, "circuit_breaker_failures": 100, "concurrency": 1,
        "lease_seconds": 0.001}  # fmt: skip
TITLES = ("Signed employment contract", "Offer letter")
FILE_NAMES = ("employment-contract-signed.pdf", "offer-letter.pdf")


def doc_settings(sims: Sims, db_url: str, **overrides: Any) -> Settings:
    return sims.settings(db_url, sync=FAST, **overrides)


def documents_of(settings: Settings, offer_id: str) -> list[DocumentState]:
    engine = open_store(settings)
    try:
        return DocumentLedger(engine).of("pageup", offer_id)
    finally:
        engine.dispose()


def ids_of(sims: Sims, index: int) -> tuple[str, str]:
    """The PageUp ids of the index-th offer's contract and offer letter."""
    entries = sims.samples[index].offer["Documents"]
    return str(entries[0]["PUReferenceID"]), str(entries[1]["PUReferenceID"])


def record_of(sims: Sims, index: int) -> str:
    number = str(sims.samples[index].offer_id)
    return next(k for k, v in sims.hris.records.items() if v["employeeNumber"] == number)


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
def test_documents_reach_the_employee_file_once_before_the_mark(
    sims: Sims, db_url: str, captured_logs: io.StringIO
) -> None:
    files_at_mark: list[int] = []
    sims.pageup.on_mark = lambda offer_id: files_at_mark.append(
        sum(len(f) for f in sims.hris.files.values())
    )
    settings = doc_settings(sims, db_url)

    report = run_sync(settings)

    assert report.ok and report.succeeded == 3
    assert len(sims.hris.records) == 3 and set(sims.hris_counts().values()) == {1}
    for index in range(3):
        record = record_of(sims, index)
        files = sims.hris.files[record]
        assert [(f["name"], f["category"], f["share"]) for f in files] == [
            (FILE_NAMES[0], 16, "no"), (FILE_NAMES[1], 17, "no")
        ]  # fmt: skip
        for kept, document_id in zip(files, ids_of(sims, index), strict=True):
            content = sims.pageup.storage.documents[document_id].content()
            assert kept["sha256"] == hashlib.sha256(content).hexdigest()
            assert kept["size"] == len(content)
        rows = documents_of(settings, str(sims.samples[index].offer_id))
        assert [(r.document_id, r.status, r.sha256, r.size_bytes, r.record_id) for r in rows] == [
            (d, "done", f["sha256"], f["size"], str(f["id"]))
            for d, f in zip(ids_of(sims, index), files, strict=True)
        ]
        assert [r.choice for r in rows] == ["signed_contract", "offer_letter"]
    # Marked only once the documents were in: each mark saw at least its own two files.
    assert files_at_mark and all(count >= 2 * (n + 1) for n, count in enumerate(files_at_mark))
    # The storage host never saw a credential; PageUp's token went to PageUp only.
    assert sims.pageup.storage.requests
    assert not any("authorization" in headers for headers in sims.pageup.storage.requests)
    assert sims.pageup.calls["get_document"] == 6
    logged = captured_logs.getvalue()
    assert '"event": "document_sent"' in logged
    for secret in (*TITLES, *FILE_NAMES, "Placeholder", "X-Sim-Signature", "/s/"):
        assert secret not in logged

    again = run_sync(settings)
    assert again.listed == 0 and sims.hris.calls["post_file"] == 6


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
def test_an_expired_link_is_fetched_fresh_once(sims: Sims, db_url: str) -> None:
    contract, _ = ids_of(sims, 0)
    sims.pageup.storage.expired_on_issue[contract] = 1

    report = run_sync(doc_settings(sims, db_url))

    assert report.ok and report.succeeded == 3
    assert sims.pageup.storage.issued[contract] == 2
    assert len(sims.hris.files[record_of(sims, 0)]) == 2


def _break(sims: Sims, case: str) -> dict[str, Any]:
    """Break the first offer's contract; the settings overrides the case needs."""
    contract, _ = ids_of(sims, 0)
    entry = sims.samples[0].offer["Documents"][0]
    stored = sims.pageup.storage
    if case == "wrong_mime":
        entry["MimeType"] = "application/x-msdownload"
    elif case == "declared_too_large":
        entry["FileSizeKB"] = 4096
    elif case == "oversized":
        stored.documents[contract] = SimDocument(contract, large_bytes=3 * 1024 * 1024)
    elif case == "not_a_pdf":
        stored.documents[contract] = SimDocument(contract, body=b"just some text, named .pdf")
    elif case == "missing":
        stored.refuse[contract] = 404
    elif case == "expired":
        stored.expired_on_issue[contract] = 2  # the link, and the fresh one, expired
    elif case == "unknown_to_pageup":
        del stored.documents[contract]  # PageUp's GET /document/{id} answers 404
    return {"documents": {"max_bytes": 2 * 1024 * 1024}}


REASONS = {
    "wrong_mime": "type application/x-msdownload is not allowed (documents.types)",
    "declared_too_large": "PageUp declares 4.0 MiB, over documents.max_bytes (2.0 MiB)",
    "oversized": "the storage announces 3.0 MiB, over documents.max_bytes (2.0 MiB)",
    "not_a_pdf": "its content is not a application/pdf file",
    "missing": "the storage refused its download link twice (HTTP 404)",
    "expired": "the storage refused its download link twice (HTTP 403)",
    "unknown_to_pageup": "PageUp's document endpoint answers HTTP 404: Document not found",
}


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
@pytest.mark.parametrize("case", sorted(REASONS))
def test_a_required_document_that_fails_parks_the_offer_with_the_reason(
    sims: Sims, db_url: str, case: str
) -> None:
    settings = doc_settings(sims, db_url, **_break(sims, case))
    offer_id, (contract, _) = str(sims.samples[0].offer_id), ids_of(sims, 0)

    report = run_sync(settings)

    assert report.failed_offers == [offer_id]
    state = ledger_states(settings)[offer_id]
    assert state.parked_at is not None and sims.pageup.processed[offer_id] == 0
    assert f"document {contract}: {REASONS[case]}" in state.last_error
    assert "Signed employment contract" not in state.last_error
    if case in ("wrong_mime", "declared_too_large"):  # refused on what PageUp declares
        assert offer_id not in sims.hris_counts(), "nothing is sent before the refusal"
        return
    if case == "unknown_to_pageup":  # no link: nothing was downloaded, no file in the HRIS
        assert sims.pageup.storage.issued[contract] == 0
        assert all(f["name"] != FILE_NAMES[0] for f in sims.hris.files.get(record_of(sims, 0), []))
    row = next(r for r in documents_of(settings, offer_id) if r.document_id == contract)
    assert row.status == "failed" and REASONS[case] in (row.last_error or "")
    assert sims.hris.files.get(record_of(sims, 0), []) == [] or all(
        f["name"] != FILE_NAMES[0] for f in sims.hris.files[record_of(sims, 0)]
    )


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
def test_a_parked_offer_retried_after_the_fix_does_not_create_the_employee_again(
    sims: Sims, db_url: str
) -> None:
    settings = doc_settings(sims, db_url, **_break(sims, "missing"))
    offer_id, (contract, _) = str(sims.samples[0].offer_id), ids_of(sims, 0)
    run_sync(settings)
    posts = sims.hris.calls["post"]
    del sims.pageup.storage.refuse[contract]
    engine = open_store(settings)
    try:
        Interventions(Ledger(engine)).retry([OfferKey("pageup", offer_id)], actor="t",
                                            reason="document back")  # fmt: skip
    finally:
        engine.dispose()

    report = run_sync(settings)

    assert report.ok and report.succeeded == 1
    assert sims.hris.calls["post"] == posts and set(sims.hris_counts().values()) == {1}
    # The optional letter got in the first time; the contract now, once.
    assert [f["name"] for f in sims.hris.files[record_of(sims, 0)]] == [FILE_NAMES[1],
                                                                        FILE_NAMES[0]]  # fmt: skip
    assert sims.pageup.processed[offer_id] == 1


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
def test_a_crash_between_upload_and_record_leaves_one_copy(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = doc_settings(sims, db_url)
    real_done = DocumentLedger.done
    crashed: list[str] = []

    def crash_once(self: DocumentLedger, ref: Any, **kw: Any) -> None:
        if not crashed:
            crashed.append(ref.document_id)
            raise Crash  # the HRIS kept the file; we never recorded so
        real_done(self, ref, **kw)

    monkeypatch.setattr(DocumentLedger, "done", crash_once)
    with pytest.raises(Crash):
        run_sync(settings)
    uploads = sims.hris.calls["post_file"]
    monkeypatch.setattr(DocumentLedger, "done", real_done)

    report = run_sync(settings)

    assert report.ok and report.succeeded == 3
    assert sims.hris.calls["list_files"] >= 1
    for index in range(3):
        names = [f["name"] for f in sims.hris.files[record_of(sims, index)]]
        assert names == list(FILE_NAMES), "each document once"
    # Found in the employee's files, not sent again: the uploads after the restart are the
    # ones never tried before (2 per offer, less the crashed one).
    assert sims.hris.calls["post_file"] == 6 and uploads >= 1
    row = next(r for r in documents_of(settings, str(sims.samples[0].offer_id))
               if r.document_id == crashed[0])  # fmt: skip
    assert row.status == "done" and row.record_id is not None


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
def test_an_optional_document_that_fails_is_reported_and_sent_later_by_retry_documents(
    sims: Sims, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offer_id, (_, letter) = str(sims.samples[0].offer_id), ids_of(sims, 0)
    sims.pageup.storage.refuse[letter] = 404
    data = sims.settings_data(db_url, sync=FAST)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    failed_before = metrics.DOCUMENTS.labels("hris", "refused")._value.get()

    report = run_sync(Settings(**data))

    assert report.ok and report.succeeded == 3 and sims.pageup.processed[offer_id] == 1
    assert [f["name"] for f in sims.hris.files[record_of(sims, 0)]] == [FILE_NAMES[0]]
    assert metrics.DOCUMENTS.labels("hris", "refused")._value.get() == failed_before + 1
    assert main(["--config", str(config), "status"]) == 0
    status = capsys.readouterr().out
    assert f"pageup/{offer_id} -> hris: document {letter} (offer_letter)" in status
    assert "refused its download link twice (HTTP 404)" in status

    del sims.pageup.storage.refuse[letter]
    assert main(["--config", str(config), "retry", "--documents", "--by", "ops"]) == 0
    assert f"sent document(s) {letter}" in capsys.readouterr().out
    assert [f["name"] for f in sims.hris.files[record_of(sims, 0)]] == list(FILE_NAMES)
    assert sims.hris.calls["post"] == 3, "the employee is not sent again"
    states = {r.document_id: r.status for r in documents_of(Settings(**data), offer_id)}
    assert states[letter] == "done"
    engine = open_store(Settings(**data))
    try:
        actions = Interventions(Ledger(engine)).actions(OfferKey("pageup", offer_id))
    finally:
        engine.dispose()
    assert [(a["action"], a["actor"], a["target"]) for a in actions] == [
        ("retry_documents", "ops", "hris")
    ]
    assert main(["--config", str(config), "retry", "--documents"]) == 0
    assert "no documents of processed offers are waiting" in capsys.readouterr().out
    # The command's own downloads (the letter's, after the fix) carried no credential either.
    assert sims.pageup.storage.served[letter] == 1
    assert sims.pageup.storage.requests
    assert all("authorization" not in headers for headers in sims.pageup.storage.requests)


JSON_DOCUMENTS = """
documents:
  path: "/{record.id}/documents"
  json: {content: contentBase64}
  fields:
    fileName: {expr: document.FileName, required: true}
    kind: {expr: "document.DocumentCategory"}
  record_id: {from: body, path: id}
  choose:
    - {name: contract, category: Contract, extension: [pdf], required: true}
    - {name: letter, category: Offer Letter}
"""


@pytest.mark.parametrize("sims", [{"offers": 2}], indirect=True)
def test_json_with_base64_content_and_the_key_honoured_after_a_crash(
    sims: Sims, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text((REPO / "mappings" / "example_hris.yaml").read_text() + JSON_DOCUMENTS)
    settings = doc_settings(sims, db_url, hris={"mapping": str(mapping)})
    real_done = DocumentLedger.done
    crashed: list[str] = []

    def crash_once(self: DocumentLedger, ref: Any, **kw: Any) -> None:
        if not crashed:
            crashed.append(ref.key)
            raise Crash
        real_done(self, ref, **kw)

    monkeypatch.setattr(DocumentLedger, "done", crash_once)
    with pytest.raises(Crash):
        run_sync(settings)
    monkeypatch.setattr(DocumentLedger, "done", real_done)
    report = run_sync(settings)

    assert report.ok and report.succeeded == 2
    assert crashed[0].endswith(f":document:{ids_of(sims, 0)[0]}")
    assert sims.hris.calls["idempotent_replay"] == 1, "the resend carried the same key"
    for index in range(2):
        record = record_of_generic(sims, index)
        kept = sims.hris.files[record]
        assert [f["name"] for f in kept] == list(FILE_NAMES)
        for item, document_id in zip(kept, ids_of(sims, index), strict=True):
            content = sims.pageup.storage.documents[document_id].content()
            assert item["sha256"] == hashlib.sha256(content).hexdigest()
            assert item["category"] is None  # the map sends "kind", not "category"


def record_of_generic(sims: Sims, index: int) -> str:
    number = str(sims.samples[index].offer_id)
    return next(k for k, v in sims.hris.records.items() if v["externalId"] == number)


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
def test_an_optional_failure_reaches_sentry_without_the_document(
    sims: Sims,
    db_url: str,
    ingest: tuple[FakeIngest, str],
) -> None:
    fake, dsn = ingest
    _, letter = ids_of(sims, 1)
    sims.pageup.storage.documents[letter] = SimDocument(letter, body=b"MZ not a pdf at all")
    settings = doc_settings(sims, db_url, sentry={"dsn": dsn, "environment": "test"})
    assert alerts.init_sentry(settings.sentry)

    report = run_sync(settings)
    alerts.flush()

    assert report.ok and report.succeeded == 3
    (event,) = fake.of("event")
    assert event["fingerprint"] == ["document-failed", "document", "document_refused", "pageup"]
    assert event["tags"]["document_id"] == letter and event["tags"]["target"] == "hris"
    assert (
        f"document {letter}: its content is not a application/pdf file"
        in (event["contexts"]["failure"]["message"])
    )
    everything = b"".join(fake.raw).decode("utf-8", "replace")
    for secret in (*TITLES, *FILE_NAMES, "Placeholder", "MZ not a pdf", "X-Sim-Signature"):
        assert secret not in everything


@pytest.mark.parametrize("sims", [BAMBOO], indirect=True)
def test_preview_lists_the_documents_without_their_content(
    sims: Sims, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(f"sqlite:///{tmp_path / 's.db'}")))
    offer_id = str(sims.samples[0].offer_id)
    contract, letter = ids_of(sims, 0)
    sims.samples[0].offer["Documents"][1]["FileSizeKB"] = 30_000

    assert main(["--config", str(config), "preview", "--offer", offer_id]) == 0

    shown = capsys.readouterr().err
    assert f"#   {contract}  'Signed employment contract'  category 'Contract'  pdf" in shown
    assert "required (signed_contract)  POST " in shown
    assert "/employees/<record.id>/files as 'employment-contract-signed.pdf'" in shown
    assert f"#   {letter}  'Offer letter'" in shown and "optional (offer_letter)" in shown
    assert f"would be refused: document {letter}: PageUp declares 29.3 MiB" in shown
    assert sims.pageup.calls["get_document"] == 0 and not sims.pageup.storage.requests
    assert sims.hris.calls["post"] == 0
