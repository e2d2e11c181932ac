"""The ``hirebridge`` command line: parse, call, print.

Exit codes: 0 success, 1 the work ran but something failed (an offer, a mapping check),
2 bad settings or field maps (every problem is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from worker import __version__, alerts
from worker.commands import applications as application_commands
from worker.commands import console as console_commands
from worker.commands import inbound as inbound_commands
from worker.commands import jobs as job_commands
from worker.commands import maps as map_commands
from worker.commands import offers as offer_commands
from worker.commands import support as support_commands
from worker.config_file import load_settings_for_command
from worker.errors import ConfigError
from worker.observability import configure_logging
from worker.settings import Settings

if TYPE_CHECKING:
    from worker.pipelines.source_run import RunReport

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
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hirebridge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hirebridge {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="settings file (default: $HIREBRIDGE_CONFIG, else config.yaml if it exists)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sync = commands.add_parser("sync", help="sync accepted offers from PageUp to the targets")
    sync.add_argument("--once", action="store_true", required=True, help="one run, then exit")
    sync.add_argument(
        "--source", action="append", help="only this source (repeat for several; default: all)"
    )
    sync.set_defaults(handler=_sync)

    run = commands.add_parser(
        "run", help="the long-running worker: syncs, inbound pushes, job postings, health, metrics"
    )
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check", help="verify settings, maps, database, PageUp, HRIS (and the ATS)"
    )
    check.add_argument(
        "--test-notice", action="store_true", help="also send each notification channel a test"
    )
    check.set_defaults(handler=_check)

    reload = commands.add_parser("reload", help="ask the running worker to reload its field maps")
    reload.set_defaults(handler=_reload)

    map_commands.register(commands)

    offer_commands.register(commands)
    inbound_commands.register(commands)
    job_commands.register(commands)
    application_commands.register(commands)
    support_commands.register(commands)
    console_commands.register(commands)

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
        "--routes",
        action="store_true",
        help="instead: two PageUp tenants, AU and NZ payrolls and an HRIS, offers routed",
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
    simulate.add_argument(
        "--tenants", type=int, default=1, help="PageUp tenants served on one port (default 1)"
    )
    simulate.add_argument(
        "--page-size", type=int, help="PageUp lists the queue in pages of this many offers"
    )
    simulate.set_defaults(handler=_simulate)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings_for_command(args.config)
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def _sync(args: argparse.Namespace) -> int:
    from worker.errors import ConfigError
    from worker.runtime import offer_worker

    settings = _settings(args)
    unknown = [name for name in args.source or [] if name not in settings.sources]
    if unknown:
        raise ConfigError([f"--source: unknown source {name!r}" for name in unknown])
    alerts.init_sentry(settings.sentry)

    async def run() -> int:
        async with offer_worker(settings) as worker:
            _stop_on_signals(worker.stop)
            reports = await worker.run_once(args.source)
        alerts.flush()
        for report in reports:
            print(_report_line(report, several=len(reports) > 1))
        return EXIT_OK if all(report.ok for report in reports) else EXIT_FAILED

    return asyncio.run(run())


def _report_line(report: RunReport, *, several: bool) -> str:
    invalid = len(report.invalid_entries)
    if report.led_elsewhere:
        return (
            f"{report.source}: run {report.run_id} was led by another worker; "
            f"this worker processed {report.processed_here} of its offers"
        )
    shared = report.processed_here != report.succeeded
    return (
        (f"{report.source}: " if several else "")
        + f"run {report.run_id}: {report.outcome}; listed {report.listed}, "
        f"processed {report.succeeded}, failed {report.failed} (parked {report.parked}), "
        f"not due {report.not_due}"
        + (f", unreadable list entries {invalid}" if invalid else "")
        + (f"; halted: {report.halted}" if report.halted else "")
        + (f" (this worker processed {report.processed_here})" if shared else "")
    )


def _stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM/SIGINT: start no new offer, let those in flight finish; a second one interrupts."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            stop()
        elif main_task is not None:
            main_task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def _run(args: argparse.Namespace) -> int:
    from worker.service.runner import run_service

    return asyncio.run(
        run_service(_settings(args), reread=lambda: load_settings_for_command(args.config))
    )


def _check(args: argparse.Namespace) -> int:
    from worker.service.check import run_checks

    checks = asyncio.run(run_checks(_settings(args), test_notice=args.test_notice))
    width = max(13, *(len(check.name) for check in checks))
    for check in checks:
        print(f"{'ok' if check.ok else 'FAIL':<5} {check.name:<{width}} {check.detail}")
    return EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED


def _reload(args: argparse.Namespace) -> int:
    import httpx

    settings = load_settings_for_command(args.config)
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
        print(f"reloaded: field maps {body['version']}")
        return EXIT_OK
    print(f"refused, the old map stays: {body.get('problems') or body}", file=sys.stderr)
    return EXIT_CONFIG


def _demo(args: argparse.Namespace) -> int:
    from worker.demo import run_demo

    if args.jobs:
        from worker.demo_jobs import run_jobs_demo

        return run_jobs_demo(folder=args.dir)
    if args.inbound:
        from worker.demo_inbound import run_inbound_demo

        return run_inbound_demo(folder=args.dir)
    if args.routes:
        from worker.demo_routes import run_routes_demo

        return run_routes_demo(folder=args.dir)
    return run_demo(offers=args.offers, folder=args.dir, target=args.target)


def _simulate(args: argparse.Namespace) -> int:
    from worker.demo import serve_simulators

    return serve_simulators(offers=args.offers, latency=args.latency_ms / 1000, seed=args.seed,
                            tenants=args.tenants, page_size=args.page_size)  # fmt: skip
