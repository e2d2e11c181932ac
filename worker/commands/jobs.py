"""``hirebridge jobs ...``: job postings into the ATS (sync, status, link, retry)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from worker.config_file import load_settings_for_command
from worker.errors import ConfigError
from worker.settings import Settings

EXIT_OK, EXIT_FAILED = 0, 1


def register(commands: Any) -> None:
    jobs = commands.add_parser("jobs", help="job postings into the ATS (ERP Integration API)")
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    sync = actions.add_parser("sync", help="one run: create, update and close job postings")
    sync.add_argument("--once", action="store_true", required=True)
    sync.set_defaults(handler=_sync)
    status = actions.add_parser("status", help="jobs by state; failures with their reasons")
    status.set_defaults(handler=_status)
    link = actions.add_parser("link", help="tie a source job to an existing ATS job")
    link.add_argument("source_id")
    link.add_argument("ats_job_id")
    link.set_defaults(handler=_link)
    retry = actions.add_parser("retry", help="make parked jobs due again")
    retry.add_argument("--all-parked", action="store_true", required=True)
    retry.set_defaults(handler=_retry)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings_for_command(args.config)
    if not settings.ats.enabled:
        raise ConfigError(["ats.enabled is false: job postings are not configured"])
    return settings


def _sync(args: argparse.Namespace) -> int:
    from worker.observability import configure_logging
    from worker.runtime import job_sync

    settings = _settings(args)
    configure_logging(settings.logging.level, settings.logging.format)

    async def run() -> Any:
        async with job_sync(settings) as sync:
            return await sync.run()

    report = asyncio.run(run())
    print(f"jobs listed {report.listed}: created {report.created}, updated {report.updated}, "
          f"unchanged {report.unchanged}, closed {report.closed}, linked after 409 "
          f"{report.reconciled}, failed {report.failed}, waiting {report.not_due}")  # fmt: skip
    for problem in report.source_problems:
        print(f"  source: {problem}")
    if report.halted:
        print(f"halted: {report.halted}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _ledger(args: argparse.Namespace) -> tuple[Any, Any]:
    from worker.runtime import open_store
    from worker.store.jobs import JobLedger

    settings = _settings(args)
    engine = open_store(settings)
    return engine, JobLedger(engine, settings.ats.source_name)


def _status(args: argparse.Namespace) -> int:
    engine, ledger = _ledger(args)
    try:
        counts, troubled = ledger.counts(), ledger.troubled()
    finally:
        engine.dispose()
    print("jobs by state")
    for state in ("open", "closed", "creating", "failed", "parked"):
        print(f"  {state:<9} {counts.get(state, 0):>6}")
    if troubled:
        print("\nfailing")
        for job in troubled:
            state = "parked" if job.parked_at else "retrying"
            print(f"  {job.source_id} ({job.ats_job_id or 'not in the ATS'}) {state}: "
                  f"{job.last_error}")  # fmt: skip
    return EXIT_OK


def _link(args: argparse.Namespace) -> int:
    engine, ledger = _ledger(args)
    try:
        ledger.link(args.source_id, args.ats_job_id)
    finally:
        engine.dispose()
    print(f"{args.source_id} is now ATS job {args.ats_job_id}; the next run updates it")
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    engine, ledger = _ledger(args)
    try:
        count = ledger.retry_parked()
    finally:
        engine.dispose()
    print(f"{count} parked job(s) due again")
    return EXIT_OK if count else EXIT_FAILED
