"""Push bodies: strict RFC 8259 JSON, bounded nesting, and problems named without values."""

from __future__ import annotations

import json

import pytest

from worker.inbound.body import MAX_DEPTH, BodyError, parse_json


def nested(depth: int) -> bytes:
    return ('{"a":' * (depth - 1) + "[1]" + "}" * (depth - 1)).encode()


def test_plain_json_parses_as_json_would() -> None:
    text = '{"name":"Zoë","n":[1,2.5,-3e2,true,null],"emoji":"\\ud83d\\ude00"}'
    assert parse_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"x": NaN}', "NaN or Infinity"),
        (b'{"x": [Infinity]}', "NaN or Infinity"),
        (b'{"x": -Infinity}', "NaN or Infinity"),
        (b'{"x": 1e400}', "too large for a 64-bit float"),
        (b'{"x": -1.5e999}', "too large for a 64-bit float"),
        (b'{"x": "a\\ud800b"}', "unpaired UTF-16 surrogate"),
        (b'{"\\udfff": 1}', "unpaired UTF-16 surrogate"),
        (b'{"x": "\xff"}', "not UTF-8"),
        (b'\xef\xbb\xbf{"x": 1}', "not JSON"),  # a BOM is not part of a JSON text
        ('{"x": 1}'.encode("utf-16"), "not UTF-8"),
        (b'{"x": 1', "not JSON"),
    ],
)
def test_what_python_would_accept_but_json_has_not_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(BodyError, match=problem) as refused:
        parse_json(body)
    assert "ud800" not in str(refused.value) and "1e400" not in str(refused.value)


def test_nesting_is_bounded_below_the_decoders_own_limit() -> None:
    assert parse_json(nested(MAX_DEPTH)) is not None
    for depth in (MAX_DEPTH + 1, 500, 100_000):
        with pytest.raises(BodyError, match=f"nested deeper than {MAX_DEPTH} levels"):
            parse_json(nested(depth))
    with pytest.raises(BodyError, match="nested deeper"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)
