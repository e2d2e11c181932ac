"""Personal values kept from those who may not see them (worker/console/masking.py)."""

from __future__ import annotations

from tests.conftest import REPO
from worker.console.masking import MASK, mask_payload, shown_paths, text_for
from worker.mapping.loader import load_field_map


def test_payloads_keep_their_shape_and_show_only_what_the_map_says_is_not_personal() -> None:
    field_map = load_field_map(REPO / "mappings" / "example_hris.yaml")
    payload = {
        "externalId": "900101", "firstName": "Ava", "email": "ava@example.org",
        "tax": {"taxFileNumber": "123456782"}, "jobTitle": "Chef", "active": True,
        "bank": {"bsb": "062-000", "accountNumber": None}, "extra": ["x", 7],
    }  # fmt: skip
    masked = mask_payload(payload, shown_paths(field_map, None))
    assert masked == {
        "externalId": "900101", "firstName": MASK, "email": MASK,
        "tax": {"taxFileNumber": MASK}, "jobTitle": "Chef", "active": True,
        "bank": {"bsb": MASK, "accountNumber": None}, "extra": [MASK, MASK],
    }  # fmt: skip


def test_a_map_that_flags_nothing_personal_is_masked_whole(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "plain.yaml"
    path.write_text("fields:\n  name: offer.Applicant.FirstName\n")
    field_map = load_field_map(path)
    assert mask_payload({"name": "Ava"}, shown_paths(field_map, None)) == {"name": MASK}


def test_texts_are_scrubbed_for_viewers_only() -> None:
    text = "HRIS said: jane@example.com already has TFN 123 456 782"
    assert text_for(True, text) == text
    scrubbed = text_for(False, text)
    assert scrubbed is not None
    assert "jane@example.com" not in scrubbed and "123 456 782" not in scrubbed
    assert text_for(False, None) is None
