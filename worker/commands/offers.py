"""``hirebridge status``, ``parked``, ``retry`` and ``skip``: the offers, for operators.

Offer ids are per PageUp tenant, so with several sources an id may name more than one offer:
``--source`` says which (a command that cannot tell asks for it).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from worker.config_file import load_settings_for_command
from worker.errors import HirebridgeError
from worker.settings import Settings
from worker.store.interventions import Interventions, OfferKey
from worker.store.ledger import Ledger, OfferState
from worker.store.runs import Runs
from worker.store.sources import SourceRuns

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
STATES = ("pending", "posting", "posted", "failed", "processed", "skipped")


def register(commands: Any) -> None:
    status = commands.add_parser("status", help="offers by state, failures with their reasons")
    status.add_argument("--limit", type=int, default=50, help="failures to list (default 50)")
    _scope(status)
    status.set_defaults(handler=_status)

    parked = commands.add_parser("parked", help="offers parked after failing, with reasons")
    _scope(parked)
    parked.set_defaults(handler=_parked)

    retry = commands.add_parser(
        "retry", help="re-queue parked or skipped offers; or send documents that did not get in"
    )
    which = retry.add_mutually_exclusive_group()
    which.add_argument("offers", nargs="*", default=[], metavar="OFFER")
    which.add_argument("--all-parked", action="store_true", help="every parked offer")
    retry.add_argument(
        "--documents",
        action="store_true",
        help="instead: send now the documents of processed offers that did not get in (the "
        "optional ones whose failure did not hold the offer back); every such offer unless "
        "OFFERs are named",
    )
    _scope(retry)
    retry.add_argument(
        "--reroute",
        action="store_true",
        help="choose the targets again (the routes may have changed); targets that accepted "
        "the offer keep it",
    )
    retry.add_argument("--reason", help="why (kept in the audit trail)")
    retry.add_argument("--by", default=_operator(), help="who (default: the login name)")
    retry.set_defaults(handler=_retry)

    skip = commands.add_parser("skip", help="leave an offer alone, with a recorded reason")
    skip.add_argument("offer", metavar="OFFER")
    skip.add_argument("--source", help="the source the offer is from (when ids repeat)")
    skip.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    skip.add_argument(
        "--mark-processed",
        action="store_true",
        help="also mark it processed in PageUp (default: it stays in PageUp's queue)",
    )
    skip.add_argument("--by", default=_operator(), help="who (default: the login name)")
    skip.set_defaults(handler=_skip)


def _scope(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="only this source (a PageUp tenant)")
    parser.add_argument("--target", help="only offers going to this target")


def _settings(args: argparse.Namespace) -> Settings:
    from worker.observability import configure_logging

    settings = load_settings_for_command(args.config)
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[tuple[Settings, Engine, Ledger]]:
    from worker.runtime import open_store

    settings = _settings(args)
    _check_scope(settings, args)
    engine = open_store(settings)
    try:
        yield settings, engine, Ledger(engine)
    finally:
        engine.dispose()


def _check_scope(settings: Settings, args: argparse.Namespace) -> None:
    from worker.errors import ConfigError

    source, target = getattr(args, "source", None), getattr(args, "target", None)
    if source is not None and source not in settings.sources:
        raise ConfigError([f"--source: unknown source {source!r} ({', '.join(settings.sources)})"])
    if target is not None and target not in settings.targets:
        raise ConfigError([f"--target: unknown target {target!r} ({', '.join(settings.targets)})"])


def _status(args: argparse.Namespace) -> int:
    with _store(args) as (settings, engine, ledger):
        counts = ledger.counts(args.source, args.target)
        per_target = ledger.target_counts(args.source, args.target)
        unfinished = ledger.unfinished(args.limit, source=args.source, target=args.target)
        parked = len(Interventions(ledger).parked(source=args.source, target=args.target))
        runs = Runs(engine).last(5, source=args.source)
        documents = _documents_status(engine, args.source, args.limit)
        documents += _applications_status(engine, settings, args.source, args.target)
        sources = SourceRuns(engine, worker_timeout=settings.sync.worker_timeout_seconds).rows(
            [args.source] if args.source else list(settings.sources)
        )
    several = len(settings.sources) > 1
    print("offers by state" + (f" (source {args.source})" if args.source else ""))
    for state in STATES:
        print(f"  {state:<10} {counts.get(state, 0):>6}")
    print(f"  {'(parked)':<10} {parked:>6}   see `hirebridge parked`")
    if len(settings.targets) > 1 or args.target:
        print("\ntargets")
        for name in [args.target] if args.target else list(settings.targets):
            line = ", ".join(f"{state} {count}" for (target, state), count in
                             sorted(per_target.items()) if target == name)  # fmt: skip
            print(f"  {name:<16} {line or 'nothing sent yet'}")
    if several or args.source:
        print("\nsources")
        for row in sources:
            running = f"running ({row.lease_owner})" if row.lease_owner else "idle"
            halted = f"; last run halted: {row.halted}" if row.halted else ""
            print(f"  {row.source:<16} next run {row.next_run_at:%Y-%m-%d %H:%M:%S}  "
                  f"{running}{halted}")  # fmt: skip
    for line in documents:
        print(line)
    if unfinished:
        print("\nnot processed (oldest first)")
        print(f"  {'offer':<20} {'state':<10} {'stage':<24} {'tries':>5}  next try / reason")
        for offer in unfinished:
            _print_offer(offer, several)
    if runs:
        print("\nlast runs")
        for run in runs:
            print(_run_line(run, several))
    return EXIT_OK


def _documents_status(engine: Engine, source: str | None, limit: int) -> list[str]:
    """Offer documents by state, and those of processed offers that did not get in."""
    from worker.store.documents import DocumentLedger

    ledger = DocumentLedger(engine)
    counts = ledger.counts(source)
    if not counts:
        return []
    lines = ["\ndocuments " + ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))]
    waiting = ledger.failed_of_processed(source=source, limit=limit)
    if waiting:
        lines.append("  not sent, of processed offers (send them: `hirebridge retry --documents`)")
    for row in waiting:
        where = f"{row.source}/{row.offer_id} -> {row.target}"
        lines.append(f"  {where}: document {row.document_id} ({row.choice}), "
                     f"{row.attempts} tries: {row.last_error}")  # fmt: skip
    return lines


def _applications_status(
    engine: Engine, settings: Settings, source: str | None, target: str | None
) -> list[str]:
    """A line per source and target with applications by state, pointing at the details."""
    from worker.store.applications import ApplicationLedger

    counts = {k: n for k, n in ApplicationLedger(engine).counts(source).items()
              if target is None or k[1] == target}  # fmt: skip
    flows = [
        (name, t)
        for name, section in settings.sources.items()
        if section.applications.enabled and source in (None, name)
        for t in section.applications.targets
        if target in (None, t)
    ]
    pairs = list(dict.fromkeys(flows + [(src, tgt) for src, tgt, _ in sorted(counts)]))
    if not pairs:
        return []
    lines = ["\napplications (details: `hirebridge applications status`)"]
    for src, tgt in pairs:
        states = ", ".join(f"{state} {n}" for (s, t, state), n in sorted(counts.items())
                           if (s, t) == (src, tgt))  # fmt: skip
        lines.append(f"  {src} -> {tgt}: {states or 'nothing yet'}")
    return lines


def _print_offer(offer: OfferState, several: bool) -> None:
    when = (
        "parked" if offer.parked_at
        else f"{offer.next_attempt_at:%H:%M:%S}" if offer.next_attempt_at else "next run"
    )  # fmt: skip
    name = f"{offer.source}/{offer.offer_id}" if several else offer.offer_id
    print(f"  {name:<20} {offer.status:<10} {offer.stage or '-':<24} {offer.attempts:>5}  "
          f"{when}: {offer.last_error or ''}")  # fmt: skip
    if len(offer.targets) > 1 or any(t.status != "posted" for t in offer.targets):
        for target in offer.targets:
            parked = " (parked)" if target.parked_at else ""
            reason = f": {target.last_error}" if target.last_error else ""
            print(f"      -> {target.target}: {target.status}{parked}{reason}")


def _run_line(run: dict[str, Any], several: bool) -> str:
    source = f"{run['source']:<12} " if several else ""
    invalid = (f", unreadable list entries {run['invalid_entries']} ({run['invalid_where']})"
               if run.get("invalid_entries") else "")  # fmt: skip
    error = f"; {run['error']}" if run.get("error") else ""
    return (f"  {run['run_id']}  {source}{run['started_at']:%Y-%m-%d %H:%M:%S}  "
            f"{run['outcome'] or 'running':<8} listed {run['listed']}, "
            f"processed {run['succeeded']}, failed {run['failed']}{invalid}{error}")  # fmt: skip


def _parked(args: argparse.Namespace) -> int:
    with _store(args) as (settings, _engine, ledger):
        parked = Interventions(ledger).parked(source=args.source, target=args.target)
    if not parked:
        print("no parked offers")
        return EXIT_OK
    several = len(settings.sources) > 1
    print(f"{'offer':<20} {'stage':<24} {'tries':>5}  {'parked at (UTC)':<19}  reason")
    for offer in parked:
        when = offer.parked_at or next((t.parked_at for t in offer.targets if t.parked_at), None)
        shown = f"{when:%Y-%m-%d %H:%M:%S}" if when else "-"
        name = f"{offer.source}/{offer.offer_id}" if several else offer.offer_id
        print(f"{name:<20} {offer.stage or '-':<24} {offer.attempts:>5}  {shown:<19}  "
              f"{offer.last_error or ''}")  # fmt: skip
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    if args.documents:
        return _retry_documents(args)
    if not args.offers and not args.all_parked:
        print("retry: name the OFFERs, or give --all-parked or --documents", file=sys.stderr)
        return EXIT_CONFIG
    with _store(args) as (_, _engine, ledger):
        interventions = Interventions(ledger)
        if args.all_parked:
            parked = interventions.parked(source=args.source, target=args.target)
            keys = [OfferKey(o.source, o.offer_id) for o in parked]
            missing: list[str] = []
        else:
            keys, missing = _resolve(interventions, args.offers, args.source)
        found = interventions.retry(keys, actor=args.by, reason=args.reason, target=args.target,
                                    reroute=args.reroute)  # fmt: skip
    for key in found:
        again = "its targets will be chosen again" if args.reroute else "the next run tries it"
        print(f"re-queued {key.source}/{key.offer_id}: {again}")
    missing += [f"{k.source}/{k.offer_id}" for k in keys if k not in found]
    for offer_id in missing:
        print(f"{offer_id}: unknown or already processed", file=sys.stderr)
    return EXIT_FAILED if missing else EXIT_OK


def _retry_documents(args: argparse.Namespace) -> int:
    from worker.store.documents import DocumentLedger

    if args.all_parked or args.reroute:
        print("retry --documents: not with --all-parked or --reroute", file=sys.stderr)
        return EXIT_CONFIG
    with _store(args) as (settings, engine, ledger):
        rows = DocumentLedger(engine).failed_of_processed(source=args.source,
                                                          offer_ids=args.offers)  # fmt: skip
        rows = [row for row in rows if args.target in (None, row.target)]
        if not rows:
            print("no documents of processed offers are waiting to be sent")
            return EXIT_FAILED if args.offers else EXIT_OK
        results = asyncio.run(_send_documents(settings, engine, rows))
        interventions = Interventions(ledger)
        for result in results:
            interventions.note(OfferKey(result.source, result.offer_id), "retry_documents",
                               actor=args.by, reason=args.reason, target=result.target)  # fmt: skip
    failed = False
    for result in results:
        name = f"{result.source}/{result.offer_id} -> {result.target}"
        if result.sent:
            print(f"{name}: sent document(s) {', '.join(result.sent)}")
        if result.failed:
            failed = True
            why = result.problem or "see `hirebridge status` for the reason"
            print(f"{name}: not sent: {', '.join(result.failed)}: {why}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


async def _send_documents(settings: Settings, engine: Engine, rows: Sequence[Any]) -> list[Any]:
    from worker.pipelines.document_retry import retry_documents
    from worker.runtime import build_source, build_target, download_client, http_client
    from worker.sources.downloads import Downloader
    from worker.store.workers import new_worker_id

    async with http_client(settings, 1) as client, download_client(settings) as downloads:
        sources = {name: build_source(settings, name, client) for name in settings.sources}
        targets = {name: build_target(settings, name, client) for name in settings.targets}
        return await retry_documents(
            settings, engine, rows, sources=sources, targets=targets,
            downloader=Downloader(settings.documents, downloads), owner=new_worker_id(),
        )  # fmt: skip


def _resolve(
    interventions: Interventions, offer_ids: Sequence[str], source: str | None
) -> tuple[list[OfferKey], list[str]]:
    keys, missing = [], []
    for offer_id in offer_ids:
        found = interventions.resolve(offer_id, source)
        if len(found) > 1:
            names = ", ".join(key.source for key in found)
            print(f"{offer_id}: in several sources ({names}): say which with --source",
                  file=sys.stderr)  # fmt: skip
            missing.append(offer_id)
        elif not found:
            missing.append(offer_id)
        keys += found if len(found) == 1 else []
    return keys, missing


def _skip(args: argparse.Namespace) -> int:
    with _store(args) as (settings, _engine, ledger):
        keys, _missing = _resolve(Interventions(ledger), [args.offer], args.source)
    if not keys:
        print(f"{args.offer}: unknown or already processed", file=sys.stderr)
        return EXIT_FAILED
    key = keys[0]
    if args.mark_processed:
        try:
            with _store(args) as (settings, engine, _ledger):
                asyncio.run(_mark_processed(settings, engine, key.source, key.offer_id))
        except HirebridgeError as exc:
            print(f"offer {args.offer}: PageUp refused: {exc}", file=sys.stderr)
            return EXIT_FAILED
    with _store(args) as (_, _engine, ledger):
        done = Interventions(ledger).skip(
            key, actor=args.by, reason=args.reason, marked=args.mark_processed
        )
    if not done:
        print(f"{args.offer}: unknown or already processed", file=sys.stderr)
        return EXIT_FAILED
    print(f"skipped {args.offer}" + (" and marked it processed in PageUp" if args.mark_processed
                                     else "; it stays in PageUp's queue"))  # fmt: skip
    return EXIT_OK


async def _mark_processed(settings: Settings, engine: Engine, source: str, offer_id: str) -> None:
    """Mark one offer processed in its tenant; a failed call goes to the error log for PageUp
    support like the worker's own."""
    from worker.runtime import http_client
    from worker.sources.pageup import PageUpClient
    from worker.store.thread import StoreThread
    from worker.support.errorlog import PageUpErrors

    store = StoreThread()
    errors = PageUpErrors(engine, store, settings.error_log)
    try:
        async with http_client(settings, 1) as client:
            pageup = PageUpClient(settings.sources[source], client, errors.observer(source))
            await pageup.mark_processed(offer_id)
    finally:
        await errors.drain()
        store.close()


def _operator() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
