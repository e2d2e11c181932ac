"""The ``hirebridge`` command line: parse, call, print.

Exit codes: 0 success, 1 the work ran but something failed (an offer, a mapping check),
2 bad settings or field maps (every problem is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from worker import __version__
from worker.errors import ConfigError, HirebridgeError, MappingError
from worker.mapping.engine import apply_map
from worker.mapping.loader import load_field_map
from worker.observability import configure_logging
from worker.settings import Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print("configuration problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hirebridge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hirebridge {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("HIREBRIDGE_CONFIG", "config.yaml")),
        help="settings file (default: $HIREBRIDGE_CONFIG or config.yaml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sync = commands.add_parser("sync", help="sync accepted offers from PageUp to the HRIS")
    sync.add_argument("--once", action="store_true", required=True, help="one run, then exit")
    sync.set_defaults(handler=_sync)

    preview = commands.add_parser("preview", help="fetch and map one offer; write nothing")
    source = preview.add_mutually_exclusive_group(required=True)
    source.add_argument("--offer", help="PageUp offer id (PUReferenceID)")
    source.add_argument("--input", type=Path, help="a saved source document (JSON)")
    preview.add_argument("--show-source", action="store_true", help="print the source document")
    preview.set_defaults(handler=_preview)

    validate = commands.add_parser("validate-mappings", help="check field maps; list problems")
    validate.add_argument("paths", nargs="*", type=Path, help="maps (default: the configured one)")
    validate.set_defaults(handler=_validate_mappings)

    status = commands.add_parser("status", help="offers by state, failures with their reasons")
    status.add_argument("--limit", type=int, default=50, help="failures to list (default 50)")
    status.set_defaults(handler=_status)

    demo = commands.add_parser("demo", help="run a sync against the bundled simulators")
    demo.add_argument("--offers", type=int, default=12, help="sample offers (default 12)")
    demo.add_argument("--dir", type=Path, default=Path(".demo"), help="demo state folder")
    demo.set_defaults(handler=_demo)

    simulate = commands.add_parser("simulate", help="serve the PageUp and HRIS simulators")
    simulate.add_argument("--offers", type=int, default=100)
    simulate.add_argument("--latency-ms", type=float, default=0.0)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.set_defaults(handler=_simulate)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def _sync(args: argparse.Namespace) -> int:
    from worker.runtime import offer_sync

    settings = _settings(args)

    async def run() -> int:
        async with offer_sync(settings) as parts:
            report = await parts.sync.run()
        print(
            f"run {report.run_id}: {report.outcome}; listed {report.listed}, "
            f"processed {report.succeeded}, failed {report.failed}"
            + (
                f", unreadable list entries {report.invalid_entries}"
                if report.invalid_entries
                else ""
            )
            + (f"; halted: {report.halted}" if report.halted else "")
        )
        return EXIT_OK if report.ok else EXIT_FAILED

    return asyncio.run(run())


def _preview(args: argparse.Namespace) -> int:
    if args.input is not None:
        settings = _settings_or_none(args)
        field_map = load_field_map(settings.hris.mapping) if settings else None
        if field_map is None:
            raise ConfigError(["preview --input needs a config file naming hris.mapping"])
        document = _read_json(args.input)
        return _print_mapping(lambda: apply_map(field_map, document), document, args.show_source)
    settings = _settings(args)
    return asyncio.run(_preview_live(settings, str(args.offer), args.show_source))


async def _preview_live(settings: Settings, offer_id: str, show_source: bool) -> int:
    from worker.pipelines.offers import preview_offer
    from worker.runtime import http_client
    from worker.sources.pageup import PageUpClient

    field_map = load_field_map(settings.hris.mapping)
    async with http_client(1) as client:
        pageup = PageUpClient(settings.pageup, client)
        try:
            document, record = await preview_offer(pageup, field_map, offer_id)
        except MappingError as exc:
            return _mapping_failed(exc)
        except HirebridgeError as exc:
            print(f"offer {offer_id}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if show_source:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    print(json.dumps(record.payload, indent=2, ensure_ascii=False))
    return EXIT_OK


def _print_mapping(map_it: Callable[[], Any], document: Any, show_source: bool) -> int:
    try:
        record = map_it()
    except MappingError as exc:
        return _mapping_failed(exc)
    if show_source:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    print(json.dumps(record.payload, indent=2, ensure_ascii=False))
    return EXIT_OK


def _mapping_failed(exc: MappingError) -> int:
    print("the offer cannot be mapped:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_FAILED


def _validate_mappings(args: argparse.Namespace) -> int:
    paths: list[Path] = list(args.paths)
    if not paths:
        paths = [load_settings(args.config, required=True).hris.mapping]
    problems: list[str] = []
    for path in paths:
        try:
            field_map = load_field_map(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        print(f"ok  {path}  ({len(field_map.rules)} fields, version {field_map.version})")
    for problem in problems:
        print(problem, file=sys.stderr)
    return EXIT_CONFIG if problems else EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from worker.runtime import open_ledger

    settings = _settings(args)
    engine, ledger = open_ledger(settings)
    try:
        counts = ledger.counts()
        unfinished = ledger.unfinished(limit=args.limit)
        runs = ledger.last_runs()
    finally:
        engine.dispose()
    print("offers by state")
    for state in ("pending", "posting", "posted", "failed", "processed"):
        print(f"  {state:<10} {counts.get(state, 0):>6}")
    if unfinished:
        print("\nnot processed (oldest first)")
        print(f"  {'offer':<12} {'state':<10} {'stage':<24} {'tries':>5}  reason")
        for offer in unfinished:
            print(
                f"  {offer.offer_id:<12} {offer.status:<10} {offer.stage or '-':<24} "
                f"{offer.attempts:>5}  {offer.last_error or ''}"
            )
    if runs:
        print("\nlast runs")
        for run in runs:
            print(
                f"  {run['run_id']}  {run['started_at']:%Y-%m-%d %H:%M:%S}  "
                f"{run['outcome'] or 'running':<8} listed {run['listed']}, "
                f"processed {run['succeeded']}, failed {run['failed']}"
            )
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from worker.demo import run_demo

    return run_demo(offers=args.offers, folder=args.dir)


def _simulate(args: argparse.Namespace) -> int:
    from worker.demo import serve_simulators

    return serve_simulators(offers=args.offers, latency=args.latency_ms / 1000, seed=args.seed)


def _settings_or_none(args: argparse.Namespace) -> Settings | None:
    return load_settings(args.config, required=True) if args.config.exists() else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{path}: not a readable JSON document: {exc}"]) from None
