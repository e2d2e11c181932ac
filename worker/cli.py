"""The ``hirebridge`` command line: parse, call, print.

Exit codes: 0 success, 1 the work ran but something failed (an offer, a mapping check),
2 bad settings or field maps (every problem is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from worker import __version__, alerts
from worker.commands import inbound as inbound_commands
from worker.commands import jobs as job_commands
from worker.commands import maps as map_commands
from worker.errors import ConfigError, HirebridgeError
from worker.observability import configure_logging
from worker.settings import Settings, load_settings
from worker.store.interventions import Interventions
from worker.store.ledger import Ledger

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

    run = commands.add_parser(
        "run", help="the long-running worker: syncs, inbound pushes, job postings, health, metrics"
    )
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check", help="verify settings, maps, database, PageUp, HRIS (and the ATS)"
    )
    check.set_defaults(handler=_check)

    reload = commands.add_parser("reload", help="ask the running worker to reload its field maps")
    reload.set_defaults(handler=_reload)

    map_commands.register(commands)

    status = commands.add_parser("status", help="offers by state, failures with their reasons")
    status.add_argument("--limit", type=int, default=50, help="failures to list (default 50)")
    status.set_defaults(handler=_status)

    parked = commands.add_parser("parked", help="offers parked after failing, with reasons")
    parked.set_defaults(handler=_parked)

    retry = commands.add_parser("retry", help="re-queue parked or skipped offers")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("offers", nargs="*", default=[], metavar="OFFER")
    which.add_argument("--all-parked", action="store_true", help="every parked offer")
    retry.add_argument("--reason", help="why (kept in the audit trail)")
    retry.add_argument("--by", default=_operator(), help="who (default: the login name)")
    retry.set_defaults(handler=_retry)

    skip = commands.add_parser("skip", help="leave an offer alone, with a recorded reason")
    skip.add_argument("offer", metavar="OFFER")
    skip.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    skip.add_argument(
        "--mark-processed",
        action="store_true",
        help="also mark it processed in PageUp (default: it stays in PageUp's queue)",
    )
    skip.add_argument("--by", default=_operator(), help="who (default: the login name)")
    skip.set_defaults(handler=_skip)

    inbound_commands.register(commands)
    job_commands.register(commands)

    demo = commands.add_parser("demo", help="run a sync against the bundled simulators")
    demo.add_argument("--offers", type=int, default=12, help="sample offers (default 12)")
    demo.add_argument("--dir", type=Path, default=Path(".demo"), help="demo state folder")
    demo.add_argument(
        "--target",
        # worker.demo.TARGETS, named here so that the CLI does not import the simulators
        choices=[
            "example",
            "steps",
            "bamboohr",
            "hibob",
            "xero",
            "successfactors",
            "employmenthero",
        ],
        default="example",
        help="the HRIS the simulator behaves like, with its shipped map (default example)",
    )
    demo.add_argument(
        "--jobs", action="store_true", help="instead: job postings into the ATS simulator"
    )
    demo.add_argument(
        "--inbound",
        action="store_true",
        help="instead: `hirebridge run` receiving Apna leads and POP Engine notifications",
    )
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
    alerts.init_sentry(settings.sentry, tenant=settings.pageup.tenant_id)

    async def run() -> int:
        async with offer_sync(settings) as parts:
            report = await parts.sync.run()
        alerts.flush()
        print(
            f"run {report.run_id}: {report.outcome}; listed {report.listed}, "
            f"processed {report.succeeded}, failed {report.failed} (parked {report.parked}), "
            f"not due {report.not_due}"
            + (
                f", unreadable list entries {report.invalid_entries}"
                if report.invalid_entries
                else ""
            )
            + (f"; halted: {report.halted}" if report.halted else "")
        )
        return EXIT_OK if report.ok else EXIT_FAILED

    return asyncio.run(run())


def _run(args: argparse.Namespace) -> int:
    from worker.service.runner import run_service

    return asyncio.run(run_service(_settings(args)))


def _check(args: argparse.Namespace) -> int:
    from worker.service.check import run_checks

    checks = asyncio.run(run_checks(_settings(args)))
    for check in checks:
        print(f"{'ok' if check.ok else 'FAIL':<5} {check.name:<13} {check.detail}")
    return EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED


def _reload(args: argparse.Namespace) -> int:
    import httpx

    settings = load_settings(args.config)
    # The worker accepts a reload from loopback only; a wildcard bind includes loopback.
    wildcard = settings.service.host in ("0.0.0.0", "::", "")  # noqa: S104 (a comparison)
    host = "127.0.0.1" if wildcard else settings.service.host
    url = f"http://{host}:{settings.service.port}/-/reload"
    try:
        reply = httpx.post(url, timeout=30)
    except httpx.HTTPError as exc:
        print(f"no worker answered at {url}: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILED
    body = reply.json()
    if reply.status_code == 200:
        print(f"reloaded: field map version {body['version']}")
        return EXIT_OK
    print(f"refused, the old map stays: {body.get('problems') or body}", file=sys.stderr)
    return EXIT_CONFIG


def _status(args: argparse.Namespace) -> int:
    with _ledger(args) as ledger:
        counts = ledger.counts()
        unfinished = ledger.unfinished(limit=args.limit)
        runs = ledger.last_runs()
        parked = len(Interventions(ledger).parked())
    print("offers by state")
    for state in ("pending", "posting", "posted", "failed", "processed", "skipped"):
        print(f"  {state:<10} {counts.get(state, 0):>6}")
    print(f"  {'(parked)':<10} {parked:>6}   see `hirebridge parked`")
    if unfinished:
        print("\nnot processed (oldest first)")
        print(f"  {'offer':<12} {'state':<10} {'stage':<24} {'tries':>5}  next try / reason")
        for offer in unfinished:
            when = (
                "parked"
                if offer.parked_at
                else (f"{offer.next_attempt_at:%H:%M:%S}" if offer.next_attempt_at else "next run")
            )
            print(
                f"  {offer.offer_id:<12} {offer.status:<10} {offer.stage or '-':<24} "
                f"{offer.attempts:>5}  {when}: {offer.last_error or ''}"
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


def _parked(args: argparse.Namespace) -> int:
    with _ledger(args) as ledger:
        parked = Interventions(ledger).parked()
    if not parked:
        print("no parked offers")
        return EXIT_OK
    print(f"{'offer':<12} {'stage':<24} {'tries':>5}  {'parked at (UTC)':<19}  reason")
    for offer in parked:
        when = f"{offer.parked_at:%Y-%m-%d %H:%M:%S}" if offer.parked_at else "-"
        print(
            f"{offer.offer_id:<12} {offer.stage or '-':<24} {offer.attempts:>5}  {when:<19}  "
            f"{offer.last_error or ''}"
        )
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    with _ledger(args) as ledger:
        wanted = (
            [state.offer_id for state in Interventions(ledger).parked()]
            if args.all_parked
            else args.offers
        )
        found = Interventions(ledger).retry(wanted, actor=args.by, reason=args.reason)
    for offer_id in found:
        print(f"re-queued {offer_id}: the next run tries it")
    missing = [offer_id for offer_id in wanted if offer_id not in found]
    for offer_id in missing:
        print(f"{offer_id}: unknown or already processed", file=sys.stderr)
    return EXIT_FAILED if missing else EXIT_OK


def _skip(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.mark_processed:
        from worker.runtime import http_client
        from worker.sources.pageup import PageUpClient

        async def mark() -> None:
            async with http_client(settings, 1) as client:
                await PageUpClient(settings.pageup, client).mark_processed(args.offer)

        try:
            asyncio.run(mark())
        except HirebridgeError as exc:
            print(f"offer {args.offer}: PageUp refused: {exc}", file=sys.stderr)
            return EXIT_FAILED
    with _ledger(args) as ledger:
        done = Interventions(ledger).skip(
            args.offer, actor=args.by, reason=args.reason, marked=args.mark_processed
        )
    if not done:
        print(f"{args.offer}: unknown or already processed", file=sys.stderr)
        return EXIT_FAILED
    print(f"skipped {args.offer}" + (" and marked it processed in PageUp" if args.mark_processed
                                     else "; it stays in PageUp's queue"))  # fmt: skip
    return EXIT_OK


@contextmanager
def _ledger(args: argparse.Namespace) -> Iterator[Ledger]:
    from worker.runtime import open_ledger

    engine, ledger = open_ledger(_settings(args))
    try:
        yield ledger
    finally:
        engine.dispose()


def _operator() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _demo(args: argparse.Namespace) -> int:
    from worker.demo import run_demo

    if args.jobs:
        from worker.demo_jobs import run_jobs_demo

        return run_jobs_demo(folder=args.dir)
    if args.inbound:
        from worker.demo_inbound import run_inbound_demo

        return run_inbound_demo(folder=args.dir)
    return run_demo(offers=args.offers, folder=args.dir, target=args.target)


def _simulate(args: argparse.Namespace) -> int:
    from worker.demo import serve_simulators

    return serve_simulators(offers=args.offers, latency=args.latency_ms / 1000, seed=args.seed)
