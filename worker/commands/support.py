"""``hirebridge support-bundle`` (for PageUp support) and ``hirebridge notices`` (to HR users)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.config_file import load_settings_for_command

EXIT_OK, EXIT_FAILED = 0, 1


def register(commands: Any) -> None:
    bundle = commands.add_parser(
        "support-bundle", help="a zip for PageUp support: failed PageUp calls, offers, config"
    )
    bundle.add_argument(
        "--source", action="append", help="only this source (repeat for several; default: all)"
    )
    bundle.add_argument("--since", default="7d", help="how far back: 7d, 24h, 90m, 2w (7d)")
    bundle.add_argument("--out", type=Path, required=True, help="the zip file to write")
    bundle.set_defaults(handler=_bundle)
    notices = commands.add_parser("notices", help="notices to HR users, and each channel's state")
    notices.add_argument("--limit", type=int, default=20, help="latest notices shown (20)")
    notices.set_defaults(handler=_notices)


def _bundle(args: argparse.Namespace) -> int:
    from worker.runtime import open_store
    from worker.support.bundle import parse_since, write_bundle

    settings = load_settings_for_command(args.config)
    since = parse_since(args.since)
    engine = open_store(settings)
    out: Path = args.out
    try:
        # Written beside the target and renamed: a failed run leaves no half a zip behind.
        handle, partial = tempfile.mkstemp(dir=out.parent or Path("."), suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as stream:
                summary = write_bundle(stream, settings=settings, engine=engine,
                                       sources=args.source or (), since=since)  # fmt: skip
            os.replace(partial, out)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    finally:
        engine.dispose()
    print(f"wrote {out}: {summary.errors} failed PageUp calls since "
          f"{summary.since:%Y-%m-%d %H:%M} UTC, {summary.offers} offers, "
          f"sources {', '.join(summary.sources)}")  # fmt: skip
    return EXIT_OK


def _notices(args: argparse.Namespace) -> int:
    from worker.runtime import open_store
    from worker.store.notices import NoticeStore

    settings = load_settings_for_command(args.config)
    engine = open_store(settings)
    try:
        store = NoticeStore(engine)
        channels = store.channels()
        recent = store.recent(args.limit)
    finally:
        engine.dispose()
    configured = settings.notifications.channels
    print("channels:" if configured else "channels: none configured (notifications.channels)")
    states = {state.channel: state for state in channels}
    for name, channel in configured.items():
        state = states.get(name)
        line = f"  {name}: {'enabled' if channel.enabled else 'disabled'}"
        if state is not None:
            line += f", waiting {state.waiting}"
            if state.last_sent_at:
                line += f", last sent {_when(state.last_sent_at)}"
            if state.failures:
                line += (f", FAILING ({state.failures} in a row, next try "
                         f"{_when(state.next_attempt_at)}): {state.last_error}")  # fmt: skip
        print(line)
    print(f"latest notices ({len(recent)}):")
    for notice_id, notice, sends in recent:
        sent = ", ".join(f"{c} {'sent ' + _when(t) if t else 'waiting'}" for c, t in sends.items())
        who = f"{notice.kind} {notice.source}" + (f"/{notice.subject}" if notice.subject else "")
        print(f"  #{notice_id} {_when(notice.created_at)} {who}: {notice.problem} [{sent}]")
    failing = any(state.failures for state in channels if state.channel in configured)
    if failing:
        print("a channel is failing: see its error above, and `hirebridge check`", file=sys.stderr)
    return EXIT_FAILED if failing else EXIT_OK


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}Z"
