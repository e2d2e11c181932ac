"""A map's documents section: loading with file:line problems, choosing documents, requests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from worker.errors import ConfigError, MappingError
from worker.mapping.loader import load_field_map
from worker.mapping.uploads import (
    already_there,
    choose_documents,
    document_context,
    listed_files,
    upload_plan,
)

BASE = "name: t\nfields:\n  id: {expr: offer.PUReferenceID, required: true}\n"


def load(tmp_path: Path, documents: str, base: str = BASE) -> Any:
    path = tmp_path / "map.yaml"
    path.write_text(base + documents)
    return load_field_map(path)


def problems(tmp_path: Path, documents: str, base: str = BASE) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, documents, base)
    return caught.value.problems


def test_every_problem_of_the_section_is_named_with_its_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """documents:
  path: "/{record.id}/files"
  multipart: {file_field: file}
  json: {content: data}
  colour: blue
  find: {path: "/x", files: items, name: name}
  choose:
    - {name: contract, title: "(unclosed", required: maybe}
    - {name: contract, category: [1]}
""",
    )
    text = "\n".join(found)
    assert re.search(r"map\.yaml:4:\d+: give exactly one of 'multipart", text), text
    assert any(p.startswith(f"{tmp_path / 'map.yaml'}:8:") and "unknown key 'colour'" in p
               for p in found)  # fmt: skip
    assert "'find' compares the name and the size or sha256" in text
    assert "bad regular expression '(unclosed'" in text
    assert "required is true/false" in text
    assert "choice name 'contract' is used twice" in text
    assert "category is a text or a list of texts" in text


def test_a_one_step_map_names_its_record_id_not_steps(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """documents:
  path: "/{steps.employee.id}/files"
  multipart: {}
  choose: [{name: contract}]
""",
    )
    assert any("steps.employee in a one-step map: its record's id is record.id" in p
               for p in found)  # fmt: skip


SAMPLE = {
    "offer": {
        "PUReferenceID": 9,
        "Documents": [
            {"PUReferenceID": 1, "Title": "Unsigned draft", "DocumentCategory": "Contract",
             "Extension": ".pdf", "MimeType": "application/pdf", "FileName": "a.pdf",
             "FileSizeKB": 10},
            {"PUReferenceID": 2, "Title": "Contract (signed)", "DocumentCategory": "contract",
             "Extension": "PDF", "MimeType": "application/pdf", "FileName": "b.pdf"},
            {"PUReferenceID": 3, "Title": "Offer letter", "DocumentCategory": "Offer Letter",
             "FileName": "c.docx", "MimeType": "application/msword"},
        ],
    }
}  # fmt: skip
CHOOSE = """documents:
  path: "/{record.id}/files"
  multipart: {file_field: file}
  fields: {share: {const: false}, fileName: document.FileName}
  choose:
    - {name: signed, category: Contract, title: "(?i)(?<!un)signed", extension: [pdf],
       required: true, fields: {category: {const: 16}}}
    - {name: letter, category: [Offer Letter, Letters], extension: docx}
"""


def test_documents_go_to_the_first_choice_they_match(tmp_path: Path) -> None:
    field_map = load(tmp_path, CHOOSE)

    chosen = choose_documents(field_map, SAMPLE)

    assert [(c.document_id, c.choice.name, c.extension) for c in chosen] == [
        ("2", "signed", "pdf"), ("3", "letter", "docx")
    ]  # fmt: skip
    context = document_context(SAMPLE, record_id="E 1", step_ids={}, entry=chosen[0].entry)
    plan = upload_plan(field_map, chosen[0], context)
    assert plan.path == "/E%201/files" and plan.file_name == "b.pdf"
    assert plan.fields == {"share": "false", "fileName": "b.pdf", "category": "16"}


def test_a_required_choice_nothing_matches_and_an_entry_without_id_are_named(
    tmp_path: Path,
) -> None:
    field_map = load(tmp_path, CHOOSE)
    document = {"offer": {"Documents": [{"Title": "x", "DocumentCategory": "Offer Letter",
                                         "FileName": "x.docx"}, "junk"]}}  # fmt: skip

    with pytest.raises(MappingError) as caught:
        choose_documents(field_map, document)

    assert caught.value.problems == [
        "documents: entry 1 (choice 'letter') has no PUReferenceID",
        "documents: entry 2 is not an object",
        "documents: no document for the required choice 'signed'",
    ]


@pytest.mark.parametrize(
    "name",
    ["example_hris.yaml", "example_payroll_steps.yaml", "example_payroll_au.yaml",
     "example_payroll_nz.yaml", "example_hris_people.yaml"],
)  # fmt: skip
def test_the_commented_section_of_each_example_map_is_valid_uncommented(
    name: str, tmp_path: Path
) -> None:
    text = (REPO / "mappings" / name).read_text()
    head, _, commented = text.partition("\n# documents:\n")
    assert commented, f"{name} shows no documents section"
    block = ["documents:"] + [line[2:] for line in commented.splitlines() if line.startswith("# ")
                              or line == "#"]  # fmt: skip
    path = tmp_path / name
    path.write_text(head + "\n" + "\n".join(block) + "\n")

    field_map = load_field_map(path)

    assert field_map.documents is not None and len(field_map.documents.choices) == 2


CHECKSUM_FIND = """documents:
  path: "/{record.id}/files"
  multipart: {file_field: file}
  find:
    path: "/{record.id}/files"
    files: "items"
    name: fileName
    size: bytes
    sha256: checksum
    id: id
  choose:
    - {name: contract, category: Contract}
"""
SHA_A = "a" * 64
SHA_B = "b" * 64


def test_the_look_up_matches_a_listed_file_by_name_and_checksum(tmp_path: Path) -> None:
    field_map = load(tmp_path, CHECKSUM_FIND)
    body = {"items": [
        {"id": 7, "fileName": "other.pdf", "bytes": 100, "checksum": SHA_A},
        {"id": 8, "fileName": "contract.pdf", "bytes": 100, "checksum": SHA_A.upper()},
    ]}  # fmt: skip
    listed = listed_files(field_map, body)

    found = already_there(field_map, listed, "contract.pdf", 100, SHA_A)

    assert found is not None and found.file_id == "8"  # checksums compared in lower case


def test_same_name_and_size_with_another_checksum_is_not_the_same_file(tmp_path: Path) -> None:
    field_map = load(tmp_path, CHECKSUM_FIND)
    body = {"items": [{"id": 8, "fileName": "contract.pdf", "bytes": 100, "checksum": SHA_B}]}

    assert already_there(field_map, listed_files(field_map, body), "contract.pdf", 100,
                         SHA_A) is None  # fmt: skip


def test_a_listed_file_without_its_checksum_falls_back_to_the_size(tmp_path: Path) -> None:
    field_map = load(tmp_path, CHECKSUM_FIND)
    body = {"items": [{"id": 9, "fileName": "contract.pdf", "bytes": 100}]}
    listed = listed_files(field_map, body)

    assert already_there(field_map, listed, "contract.pdf", 100, SHA_A) == listed[0]
    assert already_there(field_map, listed, "contract.pdf", 101, SHA_A) is None
