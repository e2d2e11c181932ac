"""A map's ``documents:`` section: which of an offer's documents go to the target, and how the
target takes them. Loading and checking only; ``worker.mapping.uploads`` evaluates it.

A section beside ``fields:`` or ``steps:`` (not a step type): the documents are sent after every
step, may be none or several per offer, are chosen by rules rather than filled field by field,
and the same section works for one-step maps (BambooHR's) without turning them into steps::

    documents:
      from: offer.Documents              # the PageUp Documents array (JMESPath; the default)
      path: "/{record.id}/files"         # appended to hris.url, like a step's path
      multipart: {file_field: file}      # or json: {content: contentBase64}
      file_name: document.FileName       # the name the target keeps the file under
      fields:                            # the other form (or JSON) fields
        fileName: document.FileName
        share: {const: "no"}
      record_id: {from: location}
      find:                              # the employee's files, read before a resend
        path: "/{record.id}/files/view"
        files: "categories[].files[]"
        name: name
        size: size                       # and/or sha256: <field holding a SHA-256>
      choose:                            # a document goes to the first rule it matches
        - name: signed_contract
          category: Contract             # DocumentCategory, any of (case-insensitive)
          title: "(?i)signed"            # a regular expression searched in Title
          extension: [pdf]               # any of
          required: true
          fields: {category: {const: "16"}}

Expressions see the source document plus ``record.id`` (the id the target gave the record),
``steps.<name>.id`` (multi-step maps) and ``document`` (the PageUp Documents entry).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.mapping.expressions import At, Context, compile_checked, step_references
from worker.mapping.requests import METHODS, RecordId, UrlTemplate, record_id_rule, template

_KEYS = {"from", "path", "method", "multipart", "json", "file_name", "fields", "record_id",
         "find", "choose", "description"}  # fmt: skip
_CHOOSE_KEYS = {"name", "category", "title", "extension", "required", "fields", "description"}
_FIND_KEYS = {"path", "files", "name", "size", "sha256", "id"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
DEFAULT_FROM = "offer.Documents"
DEFAULT_FILE_NAME = "document.FileName"

RuleBuilder = Callable[[str, Any, Context, At], Any]  # the loader's field-rule builder


@dataclass(frozen=True, slots=True)
class FileLookUp:
    """Where the target lists an employee's files, and which fields of a listed file say its
    name, size and checksum (a SHA-256 in hex) and id."""

    path: UrlTemplate
    files: Any  # compiled: the list of files in the reply
    name: Any
    size: Any = None
    sha256: Any = None
    id: Any = None


@dataclass(frozen=True, slots=True)
class Choice:
    """One rule of ``choose``: the documents it takes and what it adds to the request."""

    name: str
    categories: tuple[str, ...]  # lower-cased; empty: any
    title: re.Pattern[str] | None
    extensions: tuple[str, ...]  # lower-cased, no dot; empty: any
    required: bool
    rules: tuple[Any, ...]  # FieldRule: merged over the section's fields


@dataclass(frozen=True, slots=True)
class DocumentsSpec:
    """A validated ``documents:`` section."""

    source: Any  # compiled ``from``
    path: UrlTemplate
    method: str
    encoding: str  # "multipart" | "json"
    file_field: str  # multipart: the form field holding the file
    content_target: tuple[str, ...]  # json: where the base64 content goes
    file_name: Any  # compiled
    rules: tuple[Any, ...]  # FieldRule of the section's fields
    record_id: RecordId | None
    find: FileLookUp | None
    choices: tuple[Choice, ...]


def documents_section(
    raw: Any, at: At, context: Context, rule: RuleBuilder, step_names: set[str] | None
) -> DocumentsSpec | None:
    """Parse ``documents:``; ``step_names`` are the steps of a multi-step map (None: a
    one-step map, whose record id is ``record.id``). Problems go to ``context``."""
    problems = context.problems
    start = len(problems)

    def here(*keys: str) -> str:
        return at("documents", *keys)

    if not isinstance(raw, dict):
        problems.append(f"{here()}: 'documents' is a mapping with path, choose and how to send")
        return None
    for key in sorted(set(raw) - _KEYS, key=str):
        problems.append(f"{here(str(key))}: unknown key {key!r} in 'documents'")
    source = compile_checked("documents from", raw.get("from", DEFAULT_FROM), context,
                             here("from"))  # fmt: skip
    path = None
    if "path" not in raw:
        problems.append(f"{here()}: 'documents' needs the 'path' files are sent to")
    else:
        path = template(raw["path"], here("path"), "documents: ", context)
    method = raw.get("method", "POST")
    if method not in METHODS:
        problems.append(f"{here('method')}: documents method is one of {', '.join(METHODS)}")
    encoding, file_field, content = _encoding(raw, here, problems)
    file_name = compile_checked("documents file_name", raw.get("file_name", DEFAULT_FILE_NAME),
                                context, here("file_name"))  # fmt: skip
    rules = _fields(raw.get("fields", {}), lambda *k: here(*k), context, rule)
    record_id = record_id_rule(raw["record_id"], here, "documents: ", problems) \
        if "record_id" in raw else None  # fmt: skip
    find = _find(raw["find"], here, context) if "find" in raw else None
    choices = _choices(raw.get("choose"), here, context, rule)
    _check_refs(raw, source, file_name, path, rules, choices, find, step_names, here, problems)
    if encoding == "json" and any(r.path[: len(content)] == content for r in rules):
        problems.append(f"{here('json')}: a field fills {'.'.join(content)}, the content's place")
    if len(problems) > start or source is None or path is None or file_name is None:
        return None
    return DocumentsSpec(source, path, str(method), encoding, file_field, content, file_name,
                         tuple(rules), record_id, find, tuple(choices))  # fmt: skip


def _encoding(
    raw: dict[str, Any], here: At, problems: list[str]
) -> tuple[str, str, tuple[str, ...]]:
    has_multipart, has_json = "multipart" in raw, "json" in raw
    if has_multipart == has_json:
        problems.append(
            f"{here()}: give exactly one of 'multipart: {{file_field: file}}' or "
            "'json: {content: <field for the base64 content>}'"
        )
        return "multipart", "file", ()
    if has_multipart:
        spec = raw["multipart"] or {}
        if not isinstance(spec, dict) or set(spec) - {"file_field"}:
            problems.append(f"{here('multipart')}: 'multipart' is {{file_field: <form field>}}")
            return "multipart", "file", ()
        field = spec.get("file_field", "file")
        if not isinstance(field, str) or not field:
            problems.append(f"{here('multipart')}: file_field is a form field name")
        return "multipart", str(field), ()
    spec = raw["json"]
    content = spec.get("content") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or set(spec) - {"content"} or not isinstance(content, str) \
            or not all(content.split(".")):  # fmt: skip
        problems.append(f"{here('json')}: 'json' is {{content: <dotted field for the base64>}}")
        return "json", "", ("content",)
    return "json", "", tuple(content.split("."))


def _fields(raw: Any, at: At, context: Context, rule: RuleBuilder) -> list[Any]:
    if not isinstance(raw, dict):
        context.problems.append(f"{at('fields')}: 'fields' maps each field to a rule")
        return []
    built = [rule(str(name), spec, context, at) for name, spec in raw.items()]
    return [r for r in built if r is not None]


def _find(raw: Any, here: At, context: Context) -> FileLookUp | None:
    problems = context.problems
    if not isinstance(raw, dict) or not {"path", "files", "name"} <= set(raw):
        problems.append(f"{here('find')}: 'find' needs path, files and name (and size or sha256)")
        return None
    for key in sorted(set(raw) - _FIND_KEYS, key=str):
        problems.append(f"{here('find', str(key))}: unknown key {key!r} in 'find'")
    if "size" not in raw and "sha256" not in raw:
        problems.append(f"{here('find')}: 'find' compares the name and the size or sha256")
    path = template(raw["path"], here("find", "path"), "documents find: ", context)
    compiled = {
        key: compile_checked(f"documents find {key}", raw[key], context, here("find", key))
        for key in ("files", "name", "size", "sha256", "id") if key in raw
    }  # fmt: skip
    if path is None or any(value is None for value in compiled.values()):
        return None
    return FileLookUp(path, compiled["files"], compiled["name"], compiled.get("size"),
                      compiled.get("sha256"), compiled.get("id"))  # fmt: skip


def _choices(raw: Any, here: At, context: Context, rule: RuleBuilder) -> list[Choice]:
    problems = context.problems
    if not isinstance(raw, list) or not raw:
        problems.append(f"{here('choose')}: 'choose' lists the documents to send, each with a "
                        "name and category, title or extension")  # fmt: skip
        return []
    choices, seen = [], set()
    for index, spec in enumerate(raw):

        def at(*keys: str, index: int = index) -> str:
            return here("choose", str(index), *keys)

        if not isinstance(spec, dict):
            problems.append(f"{at()}: a choice is a mapping with a name and conditions")
            continue
        start = len(problems)
        for key in sorted(set(spec) - _CHOOSE_KEYS, key=str):
            problems.append(f"{at(str(key))}: unknown key {key!r} in a choice")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{at('name')}: a choice's 'name' is letters, digits and _")
            name = f"choice{index + 1}"
        elif name in seen:
            problems.append(f"{at('name')}: choice name {name!r} is used twice")
        seen.add(name)
        categories = _words(spec, "category", at, problems)
        extensions = tuple(e.lstrip(".") for e in _words(spec, "extension", at, problems))
        title = _pattern(spec.get("title"), at, problems)
        required = spec.get("required", False)
        if not isinstance(required, bool):
            problems.append(f"{at('required')}: required is true/false")
        rules = _fields(spec.get("fields", {}), at, context, rule)
        if len(problems) == start:
            choices.append(Choice(name, categories, title, extensions, bool(required),
                                  tuple(rules)))  # fmt: skip
    return choices


def _words(spec: dict[str, Any], key: str, at: At, problems: list[str]) -> tuple[str, ...]:
    value = spec.get(key, [])
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        problems.append(f"{at(key)}: {key} is a text or a list of texts")
        return ()
    return tuple(v.strip().lower() for v in values)


def _pattern(raw: Any, at: At, problems: list[str]) -> re.Pattern[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        problems.append(f"{at('title')}: title is a regular expression")
        return None
    try:
        return re.compile(raw)
    except re.error as exc:
        problems.append(f"{at('title')}: bad regular expression {raw!r}: {exc}")
        return None


def _check_refs(
    raw: dict[str, Any], source: Any, file_name: Any, path: UrlTemplate | None,
    rules: list[Any], choices: list[Choice], find: FileLookUp | None,
    step_names: set[str] | None, here: At, problems: list[str],
) -> None:  # fmt: skip
    """``steps.X`` must name a step of the map; a one-step map's record is ``record.id``."""
    compiled = [source, file_name, *(r.compiled for r in rules), *(r.when for r in rules)]
    compiled += [r.compiled for c in choices for r in c.rules]
    for template_ in (path, find.path if find else None):
        compiled += [part for _, part in template_.parts] if template_ else []
    for expression in compiled:
        if expression is None:
            continue
        for name in sorted(step_references(expression.parsed)):
            if step_names is None:
                problems.append(f"{here()}: documents: steps.{name} in a one-step map: its "
                                "record's id is record.id")  # fmt: skip
            elif name not in step_names:
                problems.append(f"{here()}: documents: steps.{name} is not a step of this map")
