"""``hirebridge pop-config``, ``inbox`` and ``inbox-retry``: inbound pushes for admins."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from worker.config_file import load_settings_for_command
from worker.inbound import pop

if TYPE_CHECKING:
    from worker.store.inbox import InboxItem

EXIT_OK, EXIT_FAILED = 0, 1


def register(commands: Any) -> None:
    config = commands.add_parser(
        "pop-config", help="print the POP Engine account config string, or --check one"
    )
    config.add_argument("--check", metavar="STRING", help="explain STRING and what is wrong")
    config.add_argument(
        "--show-secret", action="store_true", help="print pop.auth itself (to paste it)"
    )
    config.set_defaults(handler=_pop_config)

    inbox = commands.add_parser("inbox", help="pushes received, by state; failures with reasons")
    inbox.add_argument("--limit", type=int, default=20)
    inbox.set_defaults(handler=_inbox)

    retry = commands.add_parser("inbox-retry", help="make parked pushes due again")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=int, help="inbox id (see `hirebridge inbox`)")
    target.add_argument("--all-parked", action="store_true")
    retry.set_defaults(handler=_inbox_retry)


def _pop_config(args: argparse.Namespace) -> int:
    settings = load_settings_for_command(args.config)
    if args.check is None:
        print(pop.build_config(settings.inbound, show_secret=args.show_secret))
        if not args.show_secret:
            print("(auth hidden: add --show-secret to print it for pasting)", file=sys.stderr)
        return EXIT_OK
    report = pop.check_config(args.check, settings.inbound)
    for key, value, meaning in report.meanings:
        print(f"{key:<12} {value:<60} {meaning}")
    if not report.problems:
        print("\nok: this config notifies this deployment as it expects")
        return EXIT_OK
    print("\nproblems:")
    for problem in report.problems:
        print(f"  - {problem}")
    return EXIT_FAILED


def _inbox(args: argparse.Namespace) -> int:
    from worker.runtime import open_store
    from worker.store.inbox import Inbox

    engine = open_store(load_settings_for_command(args.config))
    try:
        inbox = Inbox(engine)
        counts = inbox.counts()
        waiting = inbox.undelivered(limit=args.limit)
    finally:
        engine.dispose()
    print("pushes by source and state")
    for (source, state), count in sorted(counts.items()):
        print(f"  {source:<6} {state:<10} {count:>6}")
    if not counts:
        print("  (none received)")
    if waiting:
        print("\nnot delivered yet")
        for item in waiting:
            state = item.state
            if item.purged_at is not None:
                state += f" (body deleted {item.purged_at:%Y-%m-%d}: cannot be delivered)"
            print(f"  #{item.id} {item.source} {state}, {item.attempts} attempts: "
                  f"{item.last_error or 'waiting for delivery'}")  # fmt: skip
    return EXIT_OK


def _inbox_retry(args: argparse.Namespace) -> int:
    from worker.runtime import open_store
    from worker.store.inbox import Inbox

    engine = open_store(load_settings_for_command(args.config))
    try:
        inbox = Inbox(engine)
        count = inbox.retry_parked(None if args.all_parked else args.id)
        purged = sum(n for (_, state), n in inbox.counts().items() if state == "purged")
        item = None if args.all_parked or count else inbox.get(args.id)
    finally:
        engine.dispose()
    if not args.all_parked and not count:
        print(f"inbox #{args.id}: {_why_not_retried(item)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{count} parked push(es) due again; the running worker delivers them")
    if args.all_parked and purged:
        print(f"{purged} purged push(es) left: their bodies were deleted, they cannot be "
              "delivered (the sender must push them again)")  # fmt: skip
    return EXIT_OK if count else EXIT_FAILED


def _why_not_retried(item: InboxItem | None) -> str:
    if item is None:
        return "no such push (see `hirebridge inbox`)"
    if item.purged_at is not None:
        return (f"purged on {item.purged_at:%Y-%m-%d}: its body was deleted after "
                "inbound.parked_retention_days, so it cannot be delivered; the sender "
                f"({item.source}) must push it again")  # fmt: skip
    if item.state == "delivered":
        return "already delivered"
    return f"not parked ({item.state}): the worker retries it on its own"
