"""No cassette holds a secret, a token or a person's data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.simulators.hris import HrisState
from worker.simulators.pageup import PageUpState

CASSETTES = sorted((Path(__file__).resolve().parent / "cassettes").glob("*.yaml"))


def test_cassettes_exist() -> None:
    assert len(CASSETTES) >= 4


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: p.name)
def test_cassette_holds_no_secret_or_pii(path: Path) -> None:
    text = path.read_text()
    assert PageUpState().client_secret not in text
    assert str(HrisState().api_key) not in text
    assert "client_secret=" not in text
    assert not re.search(r"(?i)authorization:\s*\n?\s*-\s*\S", text), "Authorization header kept"
    for token in re.findall(r'access_token\\?"\s*:\s*\\?"([^"\\]*)', text):
        assert token == "REDACTED"
    assert not re.search(r"@(?!invalid)[\w-]+\.[a-z]{2,}", text), "an email address"
    assert not re.search(r'Answer\\?"\s*:\s*\\?"\d', text), "a real form answer (TFN, bank...)"
    # Offer documents: a download link's signature is a credential, and a document body in a
    # cassette is placeholder bytes, never a generated (or real) document.
    assert set(re.findall(r"X-Sim-Signature=([^&'\"\s]*)", text)) <= {"REDACTED"}
    for body in re.findall(r"string: '(%PDF[^']*)'", text):
        assert "placeholder bytes" in body and "/Type /Page" not in body
