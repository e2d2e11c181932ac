"""Keeping PII and secrets out of logs, stored errors and alerts.

Text that came from a remote system (error messages) may quote what we sent: names, emails,
tax file or bank numbers, birth dates. ``scrub_text`` removes the shapes of such values;
``Redactor`` also removes the exact values of one record's sensitive fields.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

# Keys whose values are credentials, wherever they appear (log fields, Sentry event data).
SECRET_KEYS = frozenset(
    {"authorization", "client_secret", "access_token", "password", "token", "api_key"}
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A credential in a query string or "key=value" text (an ATS takes its key as ?api_key=).
_SECRET_PAIR = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_KEYS, key=len, reverse=True)) + r")=[^&\s\"']+"
)
# Six or more digits, possibly grouped by spaces, dashes, dots or slashes: tax file numbers,
# bank accounts, BSBs, phone numbers, dates.
_NUMBER = re.compile(r"(?<![\w])\+?\d(?:[\d \-./]*\d)?(?![\w])")
_MIN_DIGITS = 6


def _number(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    if digits < _MIN_DIGITS or _ipv4(text):
        return text
    return "[number]"


def _ipv4(text: str) -> bool:
    """A server's address ("cannot connect to 10.1.2.3:443") is not personal. Dates and tax,
    bank or phone numbers are not four dotted parts of 0-255 without leading zeros."""
    if text.count(".") != 3:
        return False
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


# What a support log must not carry even when a message is otherwise kept: quoted values
# ('Jane' is not valid), dates written with a month name, and amounts (85,000 or $85000.00).
_QUOTED = re.compile(
    r"'[^']{1,200}'|\"[^\"]{1,200}\"|\u2018[^\u2019]{1,200}\u2019|\u201c[^\u201d]{1,200}\u201d"
)
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_TEXT_DATE = re.compile(
    rf"(?i)\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}(?:,?\s+\d{{2,4}})?"
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{2,4}})?)\b"
)
_AMOUNT = re.compile(r"(?<![\w.])[$€£]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|[$€£]\s?\d[\d,.]*\d?")


def scrub_strictly(text: str) -> str:
    """``scrub_text``, and also quoted values, dates with a month name and money amounts: for
    text kept for people outside the deployment (the error log for PageUp support)."""
    text = _QUOTED.sub("[value]", text)
    text = _AMOUNT.sub("[amount]", _TEXT_DATE.sub("[date]", text))
    return scrub_text(text)


def scrub_text(text: str) -> str:
    """Replace credentials in key=value text, email addresses and long digit runs."""
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=[redacted]", text)
    return _NUMBER.sub(_number, _EMAIL.sub("[email]", text))


class Redactor:
    """Scrubs the exact sensitive values of one record, then the generic shapes."""

    def __init__(self, values: Iterable[str]) -> None:
        self._values = tuple(values)
        self._pattern: re.Pattern[str] | None = None

    def __call__(self, text: str) -> str:
        # Compiled on first use: most records never fail, and compiling costs ~0.1 ms each.
        if self._pattern is None and self._values:
            unique = {v for v in self._values if len(v) >= 3}
            ordered = sorted(unique, key=len, reverse=True)
            if ordered:
                # Whole values only: the name "Ava" must not eat into "unavailable".
                alternatives = "|".join(map(re.escape, ordered))
                self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
            self._values = ()
        if self._pattern is not None:
            text = self._pattern.sub("[redacted]", text)
        return scrub_text(text)
