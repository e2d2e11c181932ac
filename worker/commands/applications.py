"""``hirebridge applications ...``: the applications flow (sync, status, retry, skip, export)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from worker.config_file import load_settings_for_command
from worker.errors import ConfigError, HirebridgeError
from worker.settings import Settings

EXIT_OK, EXIT_FAILED = 0, 1
STATES = ("delivered", "sending", "failed", "parked", "not_chosen", "removed", "skipped")


def register(commands: Any) -> None:
    apps = commands.add_parser(
        "applications", help="applications of PageUp jobs (applicant, form) into targets"
    )
    actions = apps.add_subparsers(dest="applications_command", required=True, metavar="ACTION")
    sync = actions.add_parser("sync", help="one run of each source's applications flow")
    sync.add_argument("--once", action="store_true", required=True)
    sync.add_argument("--source", action="append", help="only this source (repeat for several)")
    sync.set_defaults(handler=_sync)
    status = actions.add_parser("status", help="applications by state; jobs; failures")
    status.add_argument("--source")
    status.set_defaults(handler=_status)
    retry = actions.add_parser("retry", help="make parked, failed or skipped applications due")
    retry.add_argument("application_ids", nargs="*", metavar="APPLICATION")
    retry.add_argument("--all-parked", action="store_true")
    retry.add_argument("--source", required=True)
    retry.add_argument("--target")
    retry.add_argument("--reason")
    retry.add_argument("--by", default="cli")
    retry.set_defaults(handler=_retry)
    skip = actions.add_parser("skip", help="never send an application again (until retried)")
    skip.add_argument("application_id", metavar="APPLICATION")
    skip.add_argument("--source", required=True)
    skip.add_argument("--target")
    skip.add_argument("--reason", required=True)
    skip.add_argument("--by", default="cli")
    skip.set_defaults(handler=_skip)
    export = actions.add_parser("export", help="a job's applications through a map, to a file")
    export.add_argument("--source", required=True)
    export.add_argument("--job", required=True, help="the job's lJobID")
    export.add_argument("--external", action="store_true", help="--job is an sExternalJobID")
    export.add_argument("--target", help="whose applications map (default: the only one)")
    export.add_argument("--format", choices=["csv", "jsonl"], required=True)
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(handler=_export)


def _settings(args: argparse.Namespace) -> Settings:
    from worker.observability import configure_logging

    settings = load_settings_for_command(args.config)
    configure_logging(settings.logging.level, settings.logging.format)
    source = getattr(args, "source", None)
    for name in source if isinstance(source, list) else [source] if source else []:
        if name not in settings.sources:
            raise ConfigError([f"--source: unknown source {name!r}"])
    return settings


def _sync(args: argparse.Namespace) -> int:
    from worker import alerts
    from worker.application_runtime import application_syncs

    settings = _settings(args)
    enabled = [n for n, s in settings.sources.items() if s.applications.enabled]
    names = list(args.source or enabled)
    off = [n for n in names if n not in enabled]
    if off or not names:
        raise ConfigError([f"sources.{n}.applications.enabled is false" for n in off]
                          or ["no source has applications.enabled"])  # fmt: skip
    alerts.init_sentry(settings.sentry)

    async def run() -> int:
        from worker.cli import _stop_on_signals

        async with application_syncs(settings) as syncs:
            chosen = [syncs[n] for n in names]

            def stop() -> None:
                for sync in chosen:
                    sync.stop()

            _stop_on_signals(stop)
            reports = [await sync.run() for sync in chosen]
        alerts.flush()
        for r in reports:
            if r.led_elsewhere:
                print(f"{r.source}: another worker runs its applications now; nothing done here")
                continue
            print(f"{r.source}: applications run {r.run_id}: jobs {r.jobs}, listed {r.listed}; "
                  f"created {r.created}, updated {r.updated}, unchanged {r.unchanged}, not "
                  f"chosen {r.not_chosen}, removed {r.removed}, failed {r.failed}, waiting "
                  f"{r.waiting}" + (f"; halted: {r.halted}" if r.halted else ""))  # fmt: skip
            for problem in r.job_problems + r.invalid_entries:
                print(f"  {problem}")
        return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED

    return asyncio.run(run())


def _ledger(settings: Settings) -> Any:
    from worker.runtime import open_store
    from worker.store.applications import ApplicationLedger

    return ApplicationLedger(open_store(settings))


def _status(args: argparse.Namespace) -> int:
    ledger = _ledger(_settings(args))
    try:
        counts, jobs = ledger.counts(args.source), ledger.jobs(args.source)
        troubled = ledger.troubled(args.source)
    finally:
        ledger.engine.dispose()
    print("applications by source, target and state")
    for source, target in sorted({(s, t) for s, t, _ in counts}):
        states = ", ".join(f"{state} {counts[(source, target, state)]}" for state in STATES
                           if (source, target, state) in counts)  # fmt: skip
        print(f"  {source} -> {target}: {states}")
    print("\njobs read")
    for job in jobs:
        when = job.last_listed_at.isoformat(timespec="seconds") if job.last_listed_at else "never"
        line = f"  {job.source} job {job.job_key}: {job.listed} listed, last read {when}"
        if job.invalid_entries:
            line += f", {job.invalid_entries} unreadable entries"
        print(line + (f"; failing: {job.last_error}" if job.last_error else ""))
    if troubled:
        print("\nfailing")
        for a in troubled:
            state = "parked" if a.parked_at else f"retrying after {a.next_attempt_at}"
            print(
                f"  {a.source} application {a.application_id} -> {a.target} (job "
                f"{a.job_key}) {state}, {a.attempts} tries, at {a.stage}: {a.last_error}"
            )
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    if bool(args.application_ids) == bool(args.all_parked):
        raise ConfigError(["retry: name applications, or give --all-parked"])
    ledger = _ledger(_settings(args))
    ids = None if args.all_parked else args.application_ids
    try:
        keys = ledger.retry(args.source, ids, target=args.target, actor=args.by,
                            reason=args.reason)  # fmt: skip
    finally:
        ledger.engine.dispose()
    found = {key.application_id for key in keys}
    for application_id in sorted(set(ids or ()) - found):
        print(f"{application_id}: not failed, parked or skipped in {args.source}", file=sys.stderr)
    print(f"{len(keys)} application target(s) due again on the next run")
    return EXIT_OK if keys and not set(ids or ()) - found else EXIT_FAILED


def _skip(args: argparse.Namespace) -> int:
    ledger = _ledger(_settings(args))
    try:
        keys = ledger.skip(args.source, args.application_id, target=args.target, actor=args.by,
                           reason=args.reason)  # fmt: skip
    finally:
        ledger.engine.dispose()
    if not keys:
        print(f"{args.application_id}: unknown in {args.source}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.application_id}: skipped for {', '.join(k.target for k in keys)}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from worker.pipelines.application_export import export_job

    settings = _settings(args)
    target = _export_target(settings, args.source, args.target)

    async def run() -> int:
        from worker.application_runtime import load_application_map
        from worker.runtime import http_client
        from worker.sources.applications import ApplicationChecks, JobRef
        from worker.sources.offer_document import DocumentChecks
        from worker.sources.pageup import PageUpClient

        source = settings.sources[args.source]
        mapping = settings.targets[target].applications_mapping
        assert mapping is not None
        field_map = load_application_map(mapping)
        checks = ApplicationChecks(source.applications.ids, DocumentChecks(source.document_ids))
        job = JobRef(args.job, external=args.external)
        client = http_client(settings, 2)
        try:
            pageup = PageUpClient(source, client)
            report = await export_job(pageup, checks, job, field_map, args.format, args.out)
        except HirebridgeError as exc:
            print(f"source {args.source}: job {args.job}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            await client.aclose()
        print(f"{args.out}: {report.written} application(s) through {target}'s map "
              f"({report.not_chosen} left out by its when)")  # fmt: skip
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_FAILED if report.problems else EXIT_OK

    return asyncio.run(run())


def _export_target(settings: Settings, source: str, given: str | None) -> str:
    if given is not None:
        if given not in settings.targets or settings.targets[given].applications_mapping is None:
            raise ConfigError([f"--target: {given!r} is not a target with applications_mapping"])
        return given
    mapped = settings.sources[source].applications.targets or [
        name for name, t in settings.targets.items() if t.applications_mapping is not None
    ]
    if len(mapped) != 1:
        raise ConfigError(["--target: give the target whose applications map to use "
                           f"(candidates: {', '.join(mapped) or 'none'})"])  # fmt: skip
    return mapped[0]
