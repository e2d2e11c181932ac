"""A mapped payload's fingerprint: what was sent, without keeping what was sent (PII)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def payload_hash(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
