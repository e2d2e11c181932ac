from __future__ import annotations

from worker.redact import Redactor, scrub_text


def test_scrub_text_hides_emails_and_long_numbers_but_keeps_short_ones() -> None:
    text = "mia@example.org TFN 123 456 782 BSB 062-000 born 1990-04-14 HTTP 422 offer 12"
    assert scrub_text(text) == "[email] TFN [number] BSB [number] born [number] HTTP 422 offer 12"


def test_ipv4_addresses_survive_but_dotted_personal_numbers_do_not() -> None:
    text = "cannot connect to 10.255.255.53:443; phone 04.12.345.678, born 14.04.1990"
    assert scrub_text(text) == "cannot connect to 10.255.255.53:443; phone [number], born [number]"
    assert scrub_text("TFN 123.456.782.999 or 123.456.078.001") == "TFN [number] or [number]"


def test_redactor_hides_exact_values_of_the_record() -> None:
    redact = Redactor(["Nguyen", "Mia", "x"])
    assert (
        redact("lastName NGUYEN already used by mia")
        == "lastName [redacted] already used by [redacted]"
    )


def test_redactor_matches_whole_values_only() -> None:
    redact = Redactor(["Ava", "mia@example.org"])
    assert redact("Ava: temporarily unavailable") == "[redacted]: temporarily unavailable"
    assert redact("<mia@example.org> taken") == "<[redacted]> taken"


def test_credentials_in_query_strings_and_key_value_text_are_redacted() -> None:
    text = "GET https://ats.example.com/erp/create-job/?api_key=s3cr3t-key&x=1; password=hunter2"
    scrubbed = scrub_text(text)
    assert "s3cr3t-key" not in scrubbed and "hunter2" not in scrubbed
    assert "api_key=[redacted]&x=1" in scrubbed
