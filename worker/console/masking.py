"""Personal values kept from those who may not see them.

Ledger texts (reasons, errors) were scrubbed when stored; for viewers they are scrubbed again
(an operator's typed reason may name someone). Payloads and source documents are personal
through and through: every value is masked, keeping the shape (keys, lists, types) so a map can
still be checked, unless an admin reveals them (audited).
"""

from __future__ import annotations

from typing import Any

from worker.redact import scrub_text

MASK = "•••"


def mask_payload(value: Any) -> Any:
    """The same structure with every value hidden (booleans and nulls say nothing personal)."""
    if isinstance(value, dict):
        return {key: mask_payload(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_payload(item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    return MASK


def text_for(may_see_personal: bool, text: str | None) -> str | None:
    """A stored free text, scrubbed again for those who may not see personal data."""
    if text is None or may_see_personal:
        return text
    return scrub_text(text)
