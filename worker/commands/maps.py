"""``hirebridge preview``, ``mappings test`` and ``validate-mappings``: field maps for admins."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from worker.config_file import load_settings_for_command
from worker.errors import ConfigError, HirebridgeError, MappingError
from worker.mapping.engine import apply_map, planned_requests
from worker.mapping.loader import FieldMap, load_field_map
from worker.observability import configure_logging
from worker.routing import choose_targets, compile_routes, no_route_reason
from worker.settings import Settings, TargetSettings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def register(commands: Any) -> None:
    preview = commands.add_parser("preview", help="fetch and map one offer; write nothing")
    source = preview.add_mutually_exclusive_group(required=True)
    source.add_argument("--offer", help="PageUp offer id (PUReferenceID)")
    source.add_argument("--input", type=Path, help="a saved source document (JSON)")
    preview.add_argument("--source", help="the source (PageUp tenant); needed when several")
    preview.add_argument("--target", help="only this target (default: those the routes choose)")
    preview.add_argument("--show-source", action="store_true", help="print the source document")
    preview.add_argument(
        "--diff",
        type=Path,
        metavar="OTHER_MAP",
        help="also map with OTHER_MAP and print what changes (configured map -> OTHER_MAP)",
    )
    preview.set_defaults(handler=_preview)

    mappings = commands.add_parser("mappings", help="field-map tools")
    mapping_commands = mappings.add_subparsers(dest="mappings_command", required=True)
    map_tests = mapping_commands.add_parser("test", help="run the sample cases beside each map")
    map_tests.add_argument("paths", nargs="*", type=Path, help="maps (default: mappings/*.yaml)")
    map_tests.set_defaults(handler=_mappings_test)

    validate = commands.add_parser("validate-mappings", help="check field maps; list problems")
    validate.add_argument("paths", nargs="*", type=Path, help="maps (default: every target's)")
    validate.set_defaults(handler=_validate_mappings)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings_for_command(args.config)
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def _preview(args: argparse.Namespace) -> int:
    """Map one source document (live or saved) for each target its routes choose; print the
    routes and the payloads. Writes nothing."""
    settings = load_settings_for_command(args.config)
    configure_logging(settings.logging.level, settings.logging.format)
    source = _one(settings.sources, args.source, "source")
    targets = [_one(settings.targets, args.target, "target")] if args.target else None
    if args.input is not None:
        document = _read_json(args.input)
    else:
        fetched = asyncio.run(_fetch_for_preview(settings, source, str(args.offer)))
        if fetched is None:
            return EXIT_FAILED
        document = fetched
    if args.show_source:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    routes = compile_routes(settings.routes, source)
    try:
        decision = choose_targets(routes, document)
    except MappingError as exc:
        return _mapping_failed(exc)
    looked = ", ".join(f"{path} = {value}" for path, value in decision.looked_at)
    # Routes and targets on stderr: stdout stays the payload (one JSON document per target).
    print(f"# routes of {source}: " + (", ".join(decision.targets) or "none match")
          + (f"  (conditions looked at {looked})" if looked else ""), file=sys.stderr)  # fmt: skip
    if not decision.targets and targets is None:
        print(no_route_reason(routes, decision), file=sys.stderr)
        return EXIT_FAILED
    failed = False
    for name in targets or list(decision.targets):
        failed |= _preview_target(settings, name, document, args.diff) != EXIT_OK
    return EXIT_FAILED if failed else EXIT_OK


def _preview_target(settings: Settings, name: str, document: Any, other: Path | None) -> int:
    target = settings.targets[name]
    field_map = load_field_map(target.mapping)
    print(f"# target {name}: {target.url}  (map {target.mapping.name})", file=sys.stderr)
    try:
        payload = apply_map(field_map, document).payload
        planned = planned_requests(field_map, document)
    except MappingError as exc:
        return _mapping_failed(exc)
    if other is not None:
        from worker.mapping.testing import diff

        try:
            changed = apply_map(load_field_map(other), document).payload
        except MappingError as exc:
            print(f"with {other}:", file=sys.stderr)
            return _mapping_failed(exc)
        changes = diff(payload, changed, str(target.mapping), str(other))
        print(changes or "no change: both maps give the same payload")
        return EXIT_OK
    if field_map.documents is not None:
        failed = _preview_documents(settings, name, field_map, document)
        if failed:
            return EXIT_FAILED
    if not field_map.multi_step:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return EXIT_OK
    for request in target_requests(target, field_map, document, planned):
        upsert = "  (or updates the record its look-up finds)" if request["upsert"] else ""
        print(f"# step {request['step']}: {request['method']} {request['url']}{upsert}")
        print(json.dumps(request["payload"], indent=2, ensure_ascii=False))
    return EXIT_OK


def target_requests(
    target: TargetSettings, field_map: FieldMap, document: Any, planned: Any = None
) -> list[dict[str, Any]]:
    """What ``field_map`` would send ``target`` for ``document``: one request per step (one
    in all for a single-step map), with method, URL and payload. MappingError if it cannot."""
    if not field_map.multi_step:
        payload = apply_map(field_map, document).payload
        return [{"step": None, "method": target.method, "url": target.url, "payload": payload,
                 "upsert": False}]  # fmt: skip
    found = []
    for request in planned if planned is not None else planned_requests(field_map, document):
        found.append({
            "step": request.step, "method": request.method or target.method,
            "url": target.url.rstrip("/") + unquote(request.path or ""),
            "payload": request.payload, "upsert": bool(request.upsert),
        })  # fmt: skip
    return found


def _preview_documents(settings: Settings, name: str, field_map: FieldMap, document: Any) -> bool:
    """List (on stderr) the documents the map would send: title, category, size, where; never
    their content. True when a required one is missing or would be refused."""
    from worker.mapping.uploads import choose_documents, document_context, upload_plan
    from worker.sources.downloads import Wanted, refusal

    target = settings.targets[name]
    try:
        chosen = choose_documents(field_map, document)
    except MappingError as exc:
        _mapping_failed(exc)
        return True
    spec = field_map.documents
    assert spec is not None
    ids = (
        {step.name: f"<{step.name}.id>" for step in field_map.steps} if field_map.multi_step else {}
    )
    print(f"# documents for {name}: {len(chosen)} chosen", file=sys.stderr)
    refused = False
    for doc in chosen:
        context = document_context(document, record_id="<record.id>", step_ids=ids, entry=doc.entry)
        try:
            plan = upload_plan(field_map, doc, context)
        except MappingError as exc:
            _mapping_failed(exc)
            return True
        size = f"{doc.declared_bytes / 1024:.0f} KB" if doc.declared_bytes is not None else "size ?"
        url = target.url.rstrip("/") + unquote(plan.path)
        need = "required" if doc.choice.required else "optional"
        print(f"#   {doc.document_id}  {doc.title!r}  category {doc.category!r}  {doc.extension} "
              f"({doc.mime or 'no type'})  {size}  {need} ({doc.choice.name})  "
              f"{spec.method} {url} as {plan.file_name!r}", file=sys.stderr)  # fmt: skip
        wanted = Wanted(doc.document_id, doc.mime, doc.extension, doc.declared_bytes)
        if (problem := refusal(settings.documents, wanted)) is not None:
            print(f"#     would be refused: {problem}", file=sys.stderr)
            refused |= doc.choice.required
    return refused


def _one(names: Any, wanted: str | None, kind: str) -> str:
    """The source (or target) asked for, or the only one there is."""
    if wanted is not None:
        if wanted not in names:
            raise ConfigError([f"--{kind}: unknown {kind} {wanted!r} ({', '.join(names)})"])
        return wanted
    if len(names) != 1:
        raise ConfigError([f"--{kind}: say which {kind} ({', '.join(names)})"])
    return str(next(iter(names)))


async def _fetch_for_preview(settings: Settings, source: str, offer_id: str) -> Any:
    from worker.runtime import http_client
    from worker.sources.offer_document import DocumentChecks, preview_document
    from worker.sources.pageup import PageUpClient

    section = settings.sources[source]
    async with http_client(settings, 1) as client:
        try:
            pageup = PageUpClient(section, client)
            return await preview_document(pageup, offer_id, DocumentChecks(section.document_ids))
        except HirebridgeError as exc:
            print(f"offer {offer_id}: {exc}", file=sys.stderr)
            return None


def _mappings_test(args: argparse.Namespace) -> int:
    from worker.mapping.testing import cases_folder, run_cases

    paths = list(args.paths) or sorted(Path("mappings").glob("*.yaml"))
    failed = cases = 0
    for path in paths:
        field_map = load_field_map(path, choosing=True)  # an applications map has a `when:`
        results = run_cases(field_map)
        if not results:
            print(f"--    {path}: no cases in {cases_folder(path)}")
        for result in results:
            cases += 1
            failed += not result.passed
            print(f"{'ok' if result.passed else 'FAIL':<5} {path.stem}/{result.name}")
            if result.detail:
                print("      " + result.detail.replace("\n", "\n      "))
    print(f"{cases - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _mapping_failed(exc: MappingError) -> int:
    print("the offer cannot be mapped:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_FAILED


def _validate_mappings(args: argparse.Namespace) -> int:
    from worker.application_runtime import load_application_map

    paths: list[Path] = list(args.paths)
    applications: set[Path] = set()
    if not paths:
        settings = load_settings_for_command(args.config)
        paths = list(dict.fromkeys(target.mapping for target in settings.targets.values()))
        applications = {t.applications_mapping for t in settings.targets.values()
                        if t.applications_mapping is not None}  # fmt: skip
        paths += sorted(applications - set(paths))
    problems: list[str] = []
    for path in paths:
        try:
            # Named as a file, a map may be either kind: a top-level `when:` is allowed.
            field_map = (
                load_application_map(path) if path in applications
                else load_field_map(path, choosing=not applications and bool(args.paths))
            )  # fmt: skip
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        steps = f"{len(field_map.steps)} steps, " if field_map.multi_step else ""
        documents = field_map.documents
        sends = f", {len(documents.choices)} document choices" if documents else ""
        print(f"ok  {path}  ({steps}{len(field_map.rules)} fields{sends}, "
              f"version {field_map.version})")  # fmt: skip
    for problem in problems:
        print(problem, file=sys.stderr)
    return EXIT_CONFIG if problems else EXIT_OK


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{path}: not a readable JSON document: {exc}"]) from None
