"""Evaluating a map's ``documents:`` section (``worker.mapping.documents``): which documents of an
offer go to the target, and the request each one is sent with. Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jmespath.exceptions import JMESPathError

from worker.errors import MappingError
from worker.mapping.documents import Choice, DocumentsSpec
from worker.mapping.engine import fill_path, map_step
from worker.mapping.loader import FieldMap, Step

_FAILURES = (JMESPathError, ValueError, TypeError, OverflowError)


@dataclass(frozen=True, slots=True)
class ChosenDocument:
    """A PageUp Documents entry a choice took. ``title`` and ``file_name`` may name the person:
    they are shown in previews, never logged or stored."""

    choice: Choice
    entry: dict[str, Any]
    document_id: str
    title: str
    category: str
    extension: str  # lower case, no dot
    mime: str  # lower case, no parameters
    declared_bytes: int | None  # FileSizeKB x 1024, when PageUp gives it


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """What one document is sent with (its content comes from the download)."""

    path: str
    file_name: str
    fields: dict[str, Any]  # multipart: flat text fields; json: the body without the content
    sensitive_values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListedFile:
    """A file the target lists for the employee."""

    name: str
    size: int | None
    sha256: str | None
    file_id: str | None


def spec_of(field_map: FieldMap) -> DocumentsSpec:
    if field_map.documents is None:
        raise ValueError(f"map {field_map.name} has no documents section")
    return field_map.documents


def choose_documents(field_map: FieldMap, document: Any) -> list[ChosenDocument]:
    """The documents of ``document`` the map sends, each with the first choice it matches.
    MappingError names a required choice that nothing matches, or an entry it cannot read."""
    spec = spec_of(field_map)
    try:
        entries = spec.source.search(document, options=field_map.options)
    except _FAILURES as exc:
        raise MappingError([f"documents: 'from' failed: {str(exc).splitlines()[0]}"]) from None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise MappingError(["documents: 'from' gave something other than a list"])
    chosen: list[ChosenDocument] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"documents: entry {index + 1} is not an object")
            continue
        choice = next((c for c in spec.choices if _matches(c, entry)), None)
        if choice is None:
            continue
        document_id = _id(entry.get("PUReferenceID"))
        if document_id is None:
            problems.append(f"documents: entry {index + 1} (choice {choice.name!r}) has no "
                            "PUReferenceID")  # fmt: skip
            continue
        chosen.append(_chosen(choice, entry, document_id))
    for choice in spec.choices:
        if choice.required and not any(c.choice is choice for c in chosen):
            problems.append(f"documents: no document for the required choice {choice.name!r}")
    if problems:
        raise MappingError(problems)
    return chosen


def document_context(
    document: Any, *, record_id: str | None, step_ids: Mapping[str, str | None], entry: Any
) -> Any:
    """What the section's expressions see: the source document, ``record.id``, ``steps`` and
    the PageUp entry as ``document``."""
    base = document if isinstance(document, dict) else {}
    steps = {name: {"id": value} for name, value in step_ids.items()}
    return {**base, "record": {"id": record_id}, "steps": steps, "document": entry}


def upload_plan(field_map: FieldMap, chosen: ChosenDocument, context: Any) -> UploadPlan:
    """The path, file name and fields of one document's upload; MappingError says what failed."""
    spec = spec_of(field_map)
    by_target = {rule.target: rule for rule in spec.rules}
    by_target.update({rule.target: rule for rule in chosen.choice.rules})
    try:
        record = map_step(field_map, Step("documents", tuple(by_target.values())), context)
        path = fill_path(field_map, spec.path, context)
    except MappingError as exc:
        raise MappingError([f"document {chosen.document_id}: {p}" for p in exc.problems]) from None
    fields: dict[str, Any] = record.payload
    if spec.encoding == "multipart":
        fields = _flat(fields, chosen.document_id)
    name = file_name(field_map, chosen, context)
    return UploadPlan(path, name, fields, record.sensitive_values)


def file_name(field_map: FieldMap, chosen: ChosenDocument, context: Any) -> str:
    """The name the target keeps the file under: a non-empty text, without folders."""
    try:
        value = spec_of(field_map).file_name.search(context, options=field_map.options)
    except _FAILURES:
        value = None
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise MappingError([f"document {chosen.document_id}: 'file_name' gave no file name"])
    text = str(value).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in text if ch.isprintable()).strip()
    if not cleaned:
        raise MappingError([f"document {chosen.document_id}: 'file_name' gave no file name"])
    return cleaned


def find_path(field_map: FieldMap, context: Any) -> str | None:
    """Where the employee's files are listed (``find.path``), or None without ``find``."""
    spec = spec_of(field_map)
    return None if spec.find is None else fill_path(field_map, spec.find.path, context)


def listed_files(field_map: FieldMap, body: Any) -> list[ListedFile]:
    """The files a listing reply holds, as far as ``find`` can read them."""
    find = spec_of(field_map).find
    if find is None or body is None:
        return []
    options = field_map.options
    try:
        files = find.files.search(body, options=options)
    except _FAILURES:
        return []
    listed = []
    for item in files if isinstance(files, list) else []:
        try:
            name = find.name.search(item, options=options)
            size = find.size.search(item, options=options) if find.size else None
            digest = find.sha256.search(item, options=options) if find.sha256 else None
            file_id = find.id.search(item, options=options) if find.id else None
        except _FAILURES:
            continue
        if not isinstance(name, str):
            continue
        listed.append(ListedFile(name, _size(size), digest.lower() if isinstance(digest, str)
                                 else None, _id(file_id)))  # fmt: skip
    return listed


def already_there(
    field_map: FieldMap, listed: list[ListedFile], name: str, size: int, sha256: str
) -> ListedFile | None:
    """The listed file with this name and content (checksum where listed, else size)."""
    find = spec_of(field_map).find
    for item in listed:
        if item.name != name or find is None:
            continue
        if find.sha256 is not None and item.sha256 is not None:
            if item.sha256 == sha256:
                return item
        elif find.size is not None and item.size == size:
            return item
    return None


def _matches(choice: Choice, entry: dict[str, Any]) -> bool:
    if choice.categories and _text(entry.get("DocumentCategory")).lower() not in choice.categories:
        return False
    if choice.extensions and extension_of(entry) not in choice.extensions:
        return False
    return choice.title is None or choice.title.search(_text(entry.get("Title"))) is not None


def extension_of(entry: dict[str, Any]) -> str:
    """The entry's Extension, else its FileName's, lower case without the dot."""
    given = _text(entry.get("Extension")).lstrip(".").lower()
    if given:
        return given
    name = _text(entry.get("FileName"))
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _chosen(choice: Choice, entry: dict[str, Any], document_id: str) -> ChosenDocument:
    kb = entry.get("FileSizeKB")
    declared = None
    if isinstance(kb, int | float) and not isinstance(kb, bool) and kb >= 0:
        declared = math.ceil(kb * 1024)
    mime = _text(entry.get("MimeType")).split(";")[0].strip().lower()
    return ChosenDocument(choice, entry, document_id, _text(entry.get("Title")),
                          _text(entry.get("DocumentCategory")), extension_of(entry), mime,
                          declared)  # fmt: skip


def _flat(fields: dict[str, Any], document_id: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict | list):
            raise MappingError([f"document {document_id}: form field {key!r} is not a single "
                                "value (multipart fields are flat)"])  # fmt: skip
        flat[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return flat


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 64:
        return value.strip()
    return None


def _size(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
