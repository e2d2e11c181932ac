"""Reading a YAML file that people edit (settings, field maps): syntax errors and keys given
twice are reported with file:line:column.

YAML lets a mapping repeat a key and PyYAML keeps the last one without a word, so a line added
at the bottom of a map can silently replace an earlier one. Duplicates are found on the node
tree, before anything is built from it, so both places are known. Two keys collide when YAML
reads them as the same value (``true``/``True``) or as the same text (``1``/``'1'``: a field
map turns every key into text).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from worker.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *anchor`: overriding a merged key is intended


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """What a YAML file says, its node tree (with marks), and its keys given twice."""

    data: Any
    node: yaml.Node | None
    duplicates: list[str]


def read_yaml(text: str, source: Path) -> YamlDocument:
    """Parse ``text``; a syntax error is a ConfigError at its file:line:col."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        duplicates = duplicate_keys(node, source, loader) if node is not None else []
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        raise ConfigError([f"{where}: YAML syntax: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return YamlDocument(data, node, duplicates)


def duplicate_keys(root: yaml.Node, source: Path, loader: yaml.SafeLoader) -> list[str]:
    """One problem per key given again in the same mapping, at any depth, naming both places."""
    problems: list[tuple[int, int, str]] = []
    seen_nodes: set[int] = set()  # an alias points at a node already walked
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, label = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(
                (item, f"{label}[{i}]") for i, item in reversed(list(enumerate(node.value)))
            )
        elif isinstance(node, yaml.MappingNode):
            problems.extend(_repeated(node, label, source, loader))
            children = [(value, _join(label, key)) for key, value in node.value]
            stack.extend(reversed(children))
    return [problem for *_, problem in sorted(problems)]


def _repeated(
    node: yaml.MappingNode, label: str, source: Path, loader: yaml.SafeLoader
) -> list[tuple[int, int, str]]:
    problems = []
    by_value: dict[Any, yaml.Node] = {}
    by_text: dict[str, yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue
        value = _key_value(key, loader)
        first = by_text.get(str(value))
        if first is None and _hashable(value):
            first = by_value.get(value)
        by_text.setdefault(str(value), key)
        if _hashable(value):
            by_value.setdefault(value, key)
        if first is not None:
            text = (
                f"{_at(source, key)}: duplicate key {_join(label, key)!r}, first given at "
                f"{_at(source, first)}; YAML silently keeps only the later one"
            )
            problems.append((key.start_mark.line, key.start_mark.column, text))
    return problems


def _key_value(key: yaml.ScalarNode, loader: yaml.SafeLoader) -> Any:
    try:
        return loader.construct_object(key)
    except yaml.YAMLError:
        return key.value  # the build reports it; compare the text meanwhile


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _join(label: str, key: yaml.Node) -> str:
    text = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
    return f"{label}.{text}" if label else text


def _at(source: Path, node: yaml.Node) -> str:
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"
