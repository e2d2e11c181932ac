"""One message for everything waiting on a channel: grouped by what is wrong, so that 200
offers parked for one reason read as one problem with 200 hires, not 200 messages."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote
from zoneinfo import ZoneInfo

from worker.store.notices import Notice, Waiting

_KIND_WORDS = {"offer": "hire", "push": "push", "job": "job posting", "source": "source"}


def compose(
    waiting: Sequence[Waiting], *, console_url: str | None, timezone: str, max_listed: int
) -> tuple[str, str]:
    """The title and plain-text body of the digest for ``waiting`` (oldest first)."""
    notices = [w.notice for w in waiting]
    zone = ZoneInfo(timezone)
    groups: dict[tuple[str, str], list[Notice]] = {}
    for notice in notices:
        groups.setdefault((notice.problem, notice.action), []).append(notice)
    title = _title(notices)
    since = min(n.created_at for n in notices).astimezone(zone)
    several_sources = len({n.source for n in notices}) > 1
    lines = [f"{title.removeprefix('hirebridge: ').capitalize()} since "
             f"{since:%d %b %Y %H:%M %Z}.", ""]  # fmt: skip
    listed = 0
    for (problem, action), members in groups.items():
        lines.append(_sentence(problem) + (f" ({len(members)})" if len(members) > 1 else ""))
        for notice in members:
            if listed >= max_listed:
                break
            lines.append(f"  - {_line(notice, console_url, several_sources)}")
            listed += 1
        lines += [f"  What to do: {action}", ""]
    if listed < len(notices):
        lines.append(f"... and {len(notices) - listed} more not listed here: see "
                     "`hirebridge parked` or the console.")  # fmt: skip
    lines.append("Sent by hirebridge. Only ids, positions and start dates are shown here.")
    return title, "\n".join(lines).rstrip() + "\n"


def _title(notices: Sequence[Notice]) -> str:
    counts: dict[str, int] = {}
    for notice in notices:
        counts[notice.kind] = counts.get(notice.kind, 0) + 1
    parts = []
    for kind in ("offer", "push", "job", "source"):
        count = counts.get(kind, 0)
        if count:
            word = _KIND_WORDS[kind] + ("s" if count > 1 else "")
            parts.append(f"{count} {word}")
    if list(counts) == ["source"]:
        return f"hirebridge: {' and '.join(parts)} stopped"
    return f"hirebridge: {', '.join(parts)} need attention"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", ")")) else ".")


def _line(notice: Notice, console_url: str | None, several_sources: bool) -> str:
    if notice.kind == "offer":
        parts = [f"Offer {notice.subject}", notice.position or "position unknown"]
        parts.append(f"starts {notice.start_date}" if notice.start_date else "start date unknown")
        if notice.target:
            parts.append(f"payroll {notice.target}")
        text = " · ".join(parts)
        if console_url and notice.subject:
            base = console_url.rstrip("/")
            link = f"{base}/console/offers/{quote(notice.source, safe='')}/" + quote(
                notice.subject, safe=""
            )
            text += f" · {link}"
        return text + (f" (source {notice.source})" if several_sources else "")
    if notice.kind == "source":
        return f"Source {notice.source}"
    if notice.kind == "push":
        return f"{notice.source} inbox item {notice.subject}"
    return f"Job {notice.subject}"
