"""Push bodies as RFC 8259 JSON, and nothing looser.

Python's ``json`` accepts more than JSON: ``NaN``, ``Infinity`` and ``-Infinity``, numbers too
large for a double (``1e400`` becomes ``inf``) and unpaired UTF-16 surrogate escapes
(``"\\ud800"``). Each would be stored, then written back out as text a strict target refuses, so
the push would park. Nesting is bounded too: the decoder and everything after it (the canonical
form, the field map, the target's encoder) recurse, and a ``RecursionError`` is a 500, a status
the POP Engine retries for ever.

Messages name the problem, never the value: bodies are personal data.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Apna leads nest four levels (lead → educations → entry → value) and POP details one. Far
# below where the decoder itself would recurse out, so every later stage is safe too.
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyError(ValueError):
    """The body is not a JSON text we can store and send on; the message says why."""


def parse_json(body: bytes) -> Any:
    """The body's JSON value; BodyError when it is not strict RFC 8259 JSON in UTF-8, or is
    nested deeper than MAX_DEPTH."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("the body is not UTF-8") from None
    try:
        value = _DECODER.decode(text)
    except BodyError:
        raise
    except RecursionError:
        raise BodyError(f"the body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise BodyError("the body is not JSON") from None
    if _may_fail_check(body):
        _check(value)
    return value


def _may_fail_check(body: bytes) -> bool:
    """Whether the walk of ``_check`` could find anything: it costs more than the parse, and
    the bytes say when it cannot. Nesting needs a bracket per level, and a surrogate needs a
    ``\\u`` escape (UTF-8 cannot encode one: the decoder refused those bytes already)."""
    return body.count(b"{") + body.count(b"[") > MAX_DEPTH or b"\\u" in body


def _no_constant(name: str) -> Any:
    raise BodyError("the body holds NaN or Infinity, which JSON (RFC 8259) does not have")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise BodyError("the body holds a number too large for a 64-bit float")
    return number


# Made once: ``json.loads`` with these hooks builds a decoder (and its scanner) per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _check(value: Any) -> None:
    """Depth and text of every value, without recursion (the value may be ~1000 deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise BodyError(f"the body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    # A pair of escapes decodes to one character: any surrogate left is unpaired.
    if not text.isascii() and _SURROGATE.search(text):
        raise BodyError("the body holds an unpaired UTF-16 surrogate, which is not text")
