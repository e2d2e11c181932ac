"""The support bundle for PageUp: ``hirebridge support-bundle`` (and the console's download).

A zip of:
- ``pageup_errors.csv``: the failed calls to PageUp in the window (see ``support.errorlog``);
- ``offers.csv``: the offers those calls were about, id and state only;
- ``config.json``: the settings, every secret removed (``support.redacted``);
- ``versions.json``: hirebridge, Python, key libraries, the database kind and schema revision;
- ``README.txt``: what is inside, for whoever opens it.
No body, payload, source document or personal data is in any of them.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import re
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import IO, Any

from sqlalchemy import Engine, text

from worker import __version__
from worker.errors import ConfigError
from worker.settings import Settings
from worker.store.errorlog import ErrorLog, FailedCall
from worker.support.redacted import REDACTED, redacted_settings, secret_values

LIBRARIES = (
    "httpx", "SQLAlchemy", "alembic", "pydantic", "pydantic-settings", "jmespath", "tenacity",
    "structlog", "APScheduler", "uvicorn", "starlette", "sentry-sdk", "apprise", "psycopg",
)  # fmt: skip
_SINCE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
ERROR_COLUMNS = (
    "time_utc", "source", "method", "path_template", "stage", "http_status", "attempt",
    "pageup_messages", "request_id", "duration_ms", "offer_id",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BundleSummary:
    errors: int
    offers: int
    since: datetime
    sources: tuple[str, ...]


def parse_since(value: str) -> timedelta:
    """``7d``, ``24h``, ``90m``, ``2w`` as a duration; ConfigError otherwise."""
    match = _SINCE.match(value.strip().lower())
    if not match or int(match[1]) <= 0:
        raise ConfigError([f"--since {value!r}: a duration such as 7d, 24h, 90m or 2w"])
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def write_bundle(
    out: IO[bytes], *, settings: Settings, engine: Engine, sources: Sequence[str] = (),
    since: timedelta = timedelta(days=7), now: datetime | None = None,
) -> BundleSummary:  # fmt: skip
    """Write the bundle for ``sources`` (default: all) over the last ``since`` to ``out``."""
    now = now or datetime.now(UTC)
    unknown = [name for name in sources if name not in settings.sources]
    if unknown:
        raise ConfigError([f"--source: unknown source {name!r}" for name in unknown])
    chosen = tuple(sources) or tuple(settings.sources)
    start = now - since
    log = ErrorLog(engine)
    calls = log.since(start, chosen)
    concerned = sorted({(c.source, c.offer_id) for c in calls if c.offer_id})
    states = log.offer_states(concerned)
    summary = BundleSummary(len(calls), len(concerned), start, chosen)
    files = {
        "README.txt": _readme(summary, now),
        "pageup_errors.csv": _errors_csv(calls),
        "offers.csv": _offers_csv(concerned, states),
        "config.json": json.dumps(_config_of(settings, chosen), indent=2, default=str) + "\n",
        "versions.json": json.dumps(versions(engine), indent=2) + "\n",
    }
    secrets = sorted(secret_values(settings), key=len, reverse=True)
    files = {name: _without(content, secrets) for name, content in files.items()}
    folder = f"hirebridge-support-{now:%Y%m%dT%H%M%SZ}"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(f"{folder}/{name}", content)
    return summary


def _config_of(settings: Settings, chosen: Sequence[str]) -> dict[str, Any]:
    """The redacted settings, limited to the chosen sources and the targets their routes reach:
    a bundle for one tenant tells nothing of the others."""
    config = redacted_settings(settings)
    routes = [route for route in config.get("routes", []) if route.get("source") in chosen]
    reached = {route.get("target") for route in routes}
    config["sources"] = {k: v for k, v in config.get("sources", {}).items() if k in chosen}
    config["targets"] = {k: v for k, v in config.get("targets", {}).items() if k in reached}
    config["routes"] = routes
    return config


def _without(content: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        content = content.replace(secret, REDACTED)
    return content


def bundle_bytes(settings: Settings, engine: Engine, **options: Any) -> bytes:
    """The bundle as bytes (for the console's download)."""
    buffer = io.BytesIO()
    write_bundle(buffer, settings=settings, engine=engine, **options)
    return buffer.getvalue()


def versions(engine: Engine) -> dict[str, Any]:
    """What PageUp support asks first: which software, which database, which schema."""
    libraries: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "hirebridge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "libraries": libraries,
        "database": _database(engine),
    }


def _database(engine: Engine) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": engine.dialect.name}
    try:
        with engine.connect() as conn:
            info = conn.dialect.server_version_info
            found["server_version"] = ".".join(map(str, info)) if info else None
            found["schema_revision"] = conn.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalar()
    except Exception as exc:  # the bundle is still worth having without it
        found["error"] = type(exc).__name__
    return found


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula (remote text can start with =)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _errors_csv(calls: Sequence[FailedCall]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ERROR_COLUMNS)
    for call in calls:
        writer.writerow([
            call.at.astimezone(UTC).isoformat(timespec="milliseconds"), call.source,
            call.method, call.route, call.stage, call.status if call.status is not None else "",
            call.attempt, _cell(call.messages or ""), _cell(call.request_id or ""),
            call.duration_ms, call.offer_id or "",
        ])  # fmt: skip
    return buffer.getvalue()


def _offers_csv(concerned: Sequence[tuple[str, str]], states: dict[tuple[str, str], str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("source", "offer_id", "state"))
    for key in concerned:
        writer.writerow((*key, states.get(key, "unknown")))
    return buffer.getvalue()


def _readme(summary: BundleSummary, now: datetime) -> str:
    sources = ", ".join(summary.sources)
    return f"""hirebridge support bundle
=========================

Made {now:%Y-%m-%d %H:%M:%S} UTC by hirebridge {__version__}, for PageUp support.
Window: failed calls to PageUp since {summary.since:%Y-%m-%d %H:%M:%S} UTC.
Sources (PageUp tenants): {sources}.

pageup_errors.csv  Every failed call to PageUp in the window ({summary.errors} rows), oldest
                   first: time (UTC), source, HTTP method, path template (ids left out, as
                   offers/{{offer_id}}), pipeline stage, HTTP status (empty: no answer, a
                   timeout or a refused connection, described in pageup_messages), the try
                   number within the call's retries, PageUp's own error messages (only its
                   documented shapes; quoted values, dates, amounts, email addresses and long
                   numbers taken out), the request or correlation id PageUp sent
                   (error_log.request_id_headers), the call's duration, and the offer it was
                   about, if any. No request or response body is kept.
offers.csv         The offers those calls were about ({summary.offers}): id and state only
                   (pending, posted, processed, failed, parked, skipped).
config.json        hirebridge's settings for these sources and the targets their routes
                   reach, every secret removed: passwords, client secrets,
                   tokens, API keys, DSNs, header values, and URLs' user, password and query
                   values read "[redacted]"; email addresses and long numbers are scrubbed.
versions.json      hirebridge, Python and key library versions; the database kind, its
                   server version and the schema (migration) revision.

No request or response body, no payload and no source document is in this bundle, and no
secret hirebridge holds (each is also searched for and taken out of every file). PageUp's
messages are kept as PageUp wrote them once the shapes above are taken out: a name PageUp
wrote into a message unquoted cannot be told from other words. Read the files before you
send them.
"""
