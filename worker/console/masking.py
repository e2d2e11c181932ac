"""Personal values kept from those who may not see them.

Ledger texts (reasons, errors) were scrubbed when stored; for viewers they are scrubbed again
(an operator's typed reason may name someone). In payloads, every value is masked (keeping the
shape: keys, lists) but the fields the map declares not personal (a map marks its personal
fields ``pii: true``; one that marks none is masked whole), unless an admin reveals them
(audited).
"""

from __future__ import annotations

from typing import Any

from worker.mapping.loader import FieldMap
from worker.redact import scrub_text

MASK = "•••"


def mask_payload(
    value: Any, shown: frozenset[tuple[str, ...]] = frozenset(), at: tuple[str, ...] = ()
) -> Any:
    """The same structure with every value hidden but those at the ``shown`` paths (booleans
    and nulls say nothing personal)."""
    if isinstance(value, dict):
        return {key: mask_payload(item, shown, (*at, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_payload(item, shown, at) for item in value]
    if value is None or isinstance(value, bool) or at in shown:
        return value
    return MASK


def shown_paths(field_map: FieldMap, step: str | None) -> frozenset[tuple[str, ...]]:
    """The fields of a step that a preview may show: those its map does not flag ``pii``, and
    only when the map flags some (a map that flags none is masked whole)."""
    if not any(rule.pii for rule in field_map.rules):
        return frozenset()
    steps = [s for s in field_map.steps if step is None or s.name == step]
    return frozenset(rule.path for s in steps[:1] for rule in s.rules if not rule.pii)


def text_for(may_see_personal: bool, text: str | None) -> str | None:
    """A stored free text, scrubbed again for those who may not see personal data."""
    if text is None or may_see_personal:
        return text
    return scrub_text(text)
