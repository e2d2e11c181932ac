"""Static type checks on field-map expressions, so that `validate-mappings` catches a mismatch
before a record does: a function called with the wrong number or kind of arguments, or a field
declared ``type: number`` whose expression can only give a string.

Inference is deliberately partial: a path into the source document has no known type, so only
what the map itself fixes (literals, constants, defaults, lookup tables, function results) is
checked. Anything unknown passes; the runtime type check still applies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}
_JMESPATH_TYPE = {"integer": "number"}
STRUCTURES = frozenset({"object", "array"})  # what a field must declare to be given
_STRING, _NUMBER = frozenset({"string", "null"}), frozenset({"number", "null"})
RETURNS: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        [
            "date", "date_in", "xero_date", "sap_date", "split_name", "title", "phone_e164",
            "country_code", "upper", "lower", "trim", "join_present", "to_string",
        ],
        _STRING,
    ),
    "answer": frozenset({"string", "number", "boolean", "null"}),
    "answer_object": frozenset({"object", "array", "null"}),
    **dict.fromkeys(["annual_to_hourly", "hourly_to_annual", "round", "to_number"], _NUMBER),
    **dict.fromkeys(["abs", "ceil", "floor", "sum", "length"], frozenset({"number"})),
    "avg": _NUMBER,
    **dict.fromkeys(["contains", "starts_with", "ends_with"], frozenset({"boolean"})),
    **dict.fromkeys(["join", "type"], frozenset({"string"})),
    **dict.fromkeys(["keys", "values", "sort", "sort_by", "map", "to_array"], frozenset({"array"})),
    "reverse": frozenset({"array", "string"}),
    "merge": frozenset({"object"}),
    **dict.fromkeys(["max", "min"], frozenset({"number", "string", "null"})),
}  # fmt: skip
_ARRAY_OR_NULL = frozenset({"array", "null"})
_SHAPES: dict[str, frozenset[str]] = {
    "multi_select_list": _ARRAY_OR_NULL,
    "projection": _ARRAY_OR_NULL,
    "value_projection": _ARRAY_OR_NULL,
    "filter_projection": _ARRAY_OR_NULL,
    "flatten": _ARRAY_OR_NULL,
    "slice": _ARRAY_OR_NULL,
    "multi_select_dict": frozenset({"object", "null"}),
    "not_expression": frozenset({"boolean"}),
    "comparator": frozenset({"boolean", "null"}),
    "expref": frozenset({"expref"}),
}


def type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def has_type(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, TYPES[type_name])


@cache
def _signatures() -> dict[str, tuple[dict[str, Any], ...]]:
    from worker.mapping.functions import MapFunctions

    table = MapFunctions({}).FUNCTION_TABLE
    return {name: tuple(entry["signature"]) for name, entry in table.items()}


def infer(node: Any, lookups: Mapping[str, Mapping[str, Any]]) -> frozenset[str] | None:
    """The JMESPath types ``node`` can give, or None when it depends on the source document."""
    kind = node.get("type")
    children = node.get("children") or []
    if kind == "literal":
        return frozenset({type_of(node.get("value"))})
    if kind in _SHAPES:
        return _SHAPES[kind]
    if kind in ("or_expression", "and_expression"):
        sides = [infer(child, lookups) for child in children]
        return None if any(side is None for side in sides) else frozenset().union(*sides)  # type: ignore[arg-type]
    if kind == "pipe" and len(children) == 2:
        return infer(children[1], lookups)
    if kind == "function_expression":
        name = node.get("value")
        if name == "lookup" and children and children[0].get("type") == "literal":
            table = lookups.get(str(children[0].get("value")), {})
            return frozenset({type_of(v) for v in table.values()} | {"null"})
        return RETURNS.get(str(name))
    return None


def call_problems(parsed: Any, lookups: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    """Calls with the wrong number of arguments, or an argument of a type the function refuses."""
    signatures = _signatures()
    for node in _walk(parsed):
        if node.get("type") != "function_expression" or node.get("value") not in signatures:
            continue
        name = node["value"]
        signature = signatures[name]
        args = node.get("children") or []
        variadic = bool(signature and signature[-1].get("variadic"))
        if (len(args) < len(signature)) if variadic else (len(args) != len(signature)):
            wanted = f"at least {len(signature)}" if variadic else str(len(signature))
            yield f"{name}() takes {wanted} argument(s), given {len(args)}"
            continue
        for index, (arg, spec) in enumerate(zip(args, signature, strict=False), start=1):
            allowed = {_base(t) for t in spec.get("types", [])}
            given = infer(arg, lookups)
            values = given - {"null"} if given is not None else None
            if not allowed or not values or values & allowed:
                continue
            yield (
                f"argument {index} of {name}() is {' or '.join(sorted(values))}, "
                f"expected {' or '.join(sorted(allowed))}"
            )


def declared_type_problems(
    parsed: Any,
    *,
    declared: str | None,
    const: Any,
    default: Any,
    lookups: Mapping[str, Mapping[str, Any]],
    missing: object,
) -> Iterator[str]:
    """A constant, default or expression result that cannot have the field's declared type;
    without a declared type, an expression that can only give an object or an array."""
    if declared is None:
        yield from _untyped_structure(parsed, lookups)
        return
    if declared not in TYPES:
        return
    if const is not missing and const is not None and not has_type(const, declared):
        yield f"declared type {declared}, but the constant is {type_of(const)}"
    if default is not missing and default is not None and not has_type(default, declared):
        yield f"declared type {declared}, but the default is {type_of(default)}"
    if parsed is None:
        return
    given = infer(parsed, lookups)
    if given is None:
        return
    possible = given - {"null"}
    if possible and _JMESPATH_TYPE.get(declared, declared) not in possible:
        source = f"{parsed['value']}()" if parsed.get("type") == "function_expression" else "it"
        yield f"declared type {declared}, but {source} gives {' or '.join(sorted(possible))}"


def _untyped_structure(parsed: Any, lookups: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    """A field without ``type`` takes a single value (the engine refuses a structure at run
    time); say so now when the expression can give nothing else."""
    given = infer(parsed, lookups) if parsed is not None else None
    possible = (given or frozenset()) - {"null"}
    if possible and possible <= STRUCTURES:
        kinds = sorted(possible)
        yield (
            f"it gives {' or '.join(f'an {kind}' for kind in kinds)}, and a field without "
            f"'type' takes a single value: declare type: {kinds[0]} if the target takes one"
        )


def _base(type_name: str) -> str:
    return "array" if type_name.startswith("array") else type_name


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.get("children", []) or []:
            yield from _walk(child)
