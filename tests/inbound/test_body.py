"""Push bodies: strict RFC 8259 JSON, bounded nesting, and problems named without values."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from worker.inbound.body import MAX_DEPTH, BodyError, _check, parse_json


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


def test_utf8_encoded_surrogates_are_refused_by_the_decoder() -> None:
    # What lets parse_json skip its walk when the body has no \u escape.
    with pytest.raises(BodyError, match="not UTF-8"):
        parse_json(b'{"x": "\xed\xa0\x80"}')


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.choice(["list", "dict", "text", "number"] if depth < 40 else ["text", "number"])
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 2))]
    if kind == "dict":
        return {random_text(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 2))}
    return random_text(rng) if kind == "text" else rng.choice([0, -1.5, 10**20])


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(["a", "é", "\\", "u", "\ud800", "\udc00", "😀"]) for _ in range(3))


def walk(text: str) -> str | None:
    """What the full walk says of the value: None, or its problem."""
    try:
        _check(json.loads(text))
    except BodyError as exc:
        return str(exc)
    return None


def test_skipping_the_walk_never_lets_a_problem_through() -> None:
    """parse_json walks the value only when the bytes allow a problem: it must refuse exactly
    what the walk would refuse, whatever the nesting (around MAX_DEPTH) and the strings."""
    rng = random.Random(13)
    outcomes = {"refused": 0, "parsed": 0}
    for _ in range(3000):
        value = random_value(rng, 1)
        for _ in range(rng.randint(0, MAX_DEPTH + 3)):  # nesting either side of the bound
            value = [value] if rng.random() < 0.5 else {random_text(rng): value}
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
        try:
            body = text.encode()
        except UnicodeEncodeError:  # a raw surrogate: not a body anyone can send as UTF-8
            continue
        walked = walk(text)
        outcomes["parsed" if walked is None else "refused"] += 1
        if walked is None:
            assert parse_json(body) == json.loads(text)
        else:
            with pytest.raises(BodyError, match=re.escape(walked)):
                parse_json(body)
    assert min(outcomes.values()) > 100  # the cases exercise both ways
