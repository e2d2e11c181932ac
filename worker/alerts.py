"""Sentry: alerts for on-call engineers. Every function is a no-op until ``init_sentry`` ran.

Events carry tags (source, offer_id, target, stage, remote system, HTTP status) and a fingerprint by
stage and error kind, so one upstream outage is one Sentry issue, not one per offer. No PII:
``send_default_pii`` is off, local variables are not sent, and ``before_send`` scrubs every
string value of an event (emails, long numbers) on top of the scrubbing done before logging.

Breadcrumbs are the record's remote calls and nothing else (``remote_call``): system, method,
path template, status, duration and attempt. Each record runs in its own isolation scope
(``record_scope``), so concurrent offers never share breadcrumbs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk
from sentry_sdk.crons import capture_checkin
from sentry_sdk.integrations.aiohttp import AioHttpIntegration
from sentry_sdk.integrations.httpx import HttpxIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration

from worker import __version__
from worker.redact import SECRET_KEYS, scrub_text
from worker.settings import ScheduleSettings, SentrySettings

_FREE_TEXT = {"message", "logentry", "contexts", "extra", "breadcrumbs", "exception", "data",
              "request", "user"}  # fmt: skip
# Ours, not personal: scrubbing them would break Sentry (the release in the sampling context
# looks like an email address to the scrubber).
_KEEP = {"timestamp", "start_timestamp", "type", "category", "level", "event_id",
         "dynamic_sampling_context", "trace_id", "span_id", "parent_span_id", "release",
         "environment"}  # fmt: skip
REMOTE_CALL = "remote_call"  # the category of our breadcrumbs, the only ones sent


def init_sentry(settings: SentrySettings) -> bool:
    """Start the Sentry client when a DSN is configured; True if it was."""
    if settings.dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.dsn.get_secret_value(),
        release=settings.release or f"hirebridge@{__version__}",
        environment=settings.environment,
        # PII collection stays at the SDK's default, off (send_default_pii is deprecated).
        include_local_variables=False,
        before_send=scrub_event,
        before_breadcrumb=_keep_breadcrumb,
        # Our own error events and breadcrumbs are explicit (below): log lines become neither.
        integrations=[LoggingIntegration(level=None, event_level=None)],
        # SQLAlchemy's breadcrumbs are SQL statements; httpx's carry whole URLs (ids in paths,
        # keys in queries), and it would send Sentry trace headers to PageUp and the HRIS; so
        # would aiohttp's, which moves httpx's bytes (worker/remote/transport.py).
        # Starlette's reads every inbound request's body before the endpoint runs: a push
        # refused for its credentials would wait for its body, and the body would be read
        # whole before the endpoint's size cap (and could reach an event).
        disabled_integrations=[
            SqlalchemyIntegration(),
            HttpxIntegration(),
            AioHttpIntegration(),
            StarletteIntegration(),
        ],
    )
    return True


def _keep_breadcrumb(crumb: Any, _hint: Any) -> Any:
    """Only our remote-call breadcrumbs, scrubbed; any other integration's are noise."""
    if not isinstance(crumb, dict) or crumb.get("category") != REMOTE_CALL:
        return None
    return scrub_event(crumb, {})


def remote_call(
    *, system: str, stage: str, method: str, route: str, status: int | None, cause: str | None,
    seconds: float, attempt: int,
) -> None:  # fmt: skip
    """A breadcrumb for one HTTP exchange; ``route`` is the path template (no ids, no query)."""
    if not sentry_sdk.get_client().is_active():
        return  # the common case without a DSN: no dict to build
    failed = status is None or status >= 500
    data: dict[str, Any] = {
        "system": system, "stage": stage, "method": method, "url": route,
        "status_code": status, "duration_ms": round(seconds * 1000, 1), "attempt": attempt,
    }  # fmt: skip
    if cause is not None:
        data["error"] = cause
    level = "error" if failed else "warning" if status is not None and status >= 400 else "info"
    sentry_sdk.add_breadcrumb(type="http", category=REMOTE_CALL, level=level, data=data)


@contextmanager
def record_scope() -> Iterator[None]:
    """An isolation scope for one record (offer, push, job) with no breadcrumbs yet.

    sentry_sdk 2.x keeps breadcrumbs on the isolation scope, held in a context variable; an
    asyncio task copies the reference, not the scope, so the offers running side by side in
    one run would share (and mix) breadcrumbs without a scope each. Clearing drops what earlier
    calls (the run's listing, another offer) left behind.
    """
    with sentry_sdk.isolation_scope() as scope:
        scope.clear_breadcrumbs()
        yield


def scrub_event(event: Any, _hint: Any) -> Any:
    """Scrub the free text of an event or breadcrumb; drop secret-named keys.

    Tags, ids and timestamps are left alone: they are ours and must stay searchable.
    """
    if not isinstance(event, dict):
        return event
    return {key: _scrub(value) if key in _FREE_TEXT else value for key, value in event.items()}


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "[redacted]" if str(key).lower() in SECRET_KEYS
            else item if key in _KEEP else _scrub(item)
            for key, item in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return scrub_text(value) if isinstance(value, str) else value


def push_refused(*, source: str, problems: list[dict[str, str]]) -> None:
    """A push we answered 400: the sender will not fix it by retrying, so a person must."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("stage", "receive")
        scope.set_tag("inbound_source", source)
        scope.set_context("problems", {"fields": [p["field"] for p in problems][:20]})
        scope.fingerprint = ["push-refused", source]
        sentry_sdk.capture_message(f"{source} push refused as invalid", level="warning")


def push_not_stored(*, source: str, error: str) -> None:
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("stage", "store")
        scope.set_tag("inbound_source", source)
        scope.set_context("failure", {"error": error})
        scope.fingerprint = ["push-not-stored", source]
        sentry_sdk.capture_message(f"{source} push could not be stored", level="error")


def offer_failed(
    *, source: str, offer_id: str, target: str | None, stage: str, kind: str, message: str,
    system: str | None, status: int | None, parked: bool,
) -> None:  # fmt: skip
    """An offer failed as a whole (``target`` None) or at one of its targets."""
    tags = {"source": source, "offer_id": offer_id, "target": target or "none"}
    _failure(
        f"offer failed at {stage}: {kind}", ["offer-failed", stage, kind, system or "none"],
        tags, stage=stage, kind=kind, message=message, system=system, status=status,
        parked=parked,
    )  # fmt: skip


def document_failed(
    *, source: str, offer_id: str, target: str, document_id: str, stage: str, kind: str,
    message: str, system: str | None, status: int | None,
) -> None:  # fmt: skip
    """An optional offer document did not get in; the offer was marked all the same."""
    tags = {"source": source, "offer_id": offer_id, "target": target, "document_id": document_id}
    _failure(
        f"optional document failed at {stage}: {kind}", ["document-failed", stage, kind,
        system or "none"], tags, stage=stage, kind=kind, message=message, system=system,
        status=status, parked=False,
    )  # fmt: skip


def inbound_failed(
    *, source: str, item_id: int, stage: str, kind: str, message: str, system: str | None,
    status: int | None, parked: bool,
) -> None:  # fmt: skip
    _failure(
        f"{source} delivery failed at {stage}: {kind}", ["inbound-failed", source, stage, kind],
        {"inbound_source": source, "inbox_id": str(item_id)}, stage=stage, kind=kind,
        message=message, system=system, status=status, parked=parked,
    )  # fmt: skip


def job_failed(
    *, source_id: str, stage: str, kind: str, message: str, status: int | None, parked: bool
) -> None:
    _failure(
        f"job posting failed at {stage}: {kind}", ["job-failed", stage, kind],
        {"source_job_id": source_id}, stage=f"job_{stage}", kind=kind, message=message,
        system="ats", status=status, parked=parked,
    )  # fmt: skip


def application_failed(
    *, source: str, application_id: str, target: str, stage: str, kind: str, message: str,
    system: str | None, status: int | None, parked: bool,
) -> None:  # fmt: skip
    """An application could not be fetched, mapped or delivered to one target."""
    tags = {"source": source, "application_id": application_id, "target": target}
    _failure(
        f"application failed at {stage}: {kind}",
        ["application-failed", stage, kind, system or "none"], tags, stage=stage, kind=kind,
        message=message, system=system, status=status, parked=parked,
    )  # fmt: skip


def application_job_failed(*, source: str, job: str, reason: str, status: int | None) -> None:
    """A job's applications could not be read (a job PageUp does not have, a bad list)."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("source", source)
        scope.set_tag("job", job)
        scope.set_tag("stage", "list_applications")
        scope.set_tag("http_status", str(status) if status is not None else "none")
        scope.set_context("failure", {"reason": reason})
        scope.fingerprint = ["application-job-failed", source, job]
        sentry_sdk.capture_message(f"applications of a job cannot be read: {source}", level="error")


def _failure(
    title: str, fingerprint: list[str], tags: dict[str, str], *, stage: str, kind: str,
    message: str, system: str | None, status: int | None, parked: bool,
) -> None:  # fmt: skip
    """One record's failure (offer, push, job): tagged the same way whatever the record."""
    with sentry_sdk.new_scope() as scope:
        for name, value in tags.items():
            scope.set_tag(name, value)
        scope.set_tag("stage", stage)
        scope.set_tag("error_kind", kind)
        scope.set_tag("remote_system", system or "none")
        scope.set_tag("http_status", str(status) if status is not None else "none")
        scope.set_tag("parked", str(parked).lower())
        scope.set_context("failure", {"message": message})
        scope.fingerprint = fingerprint
        sentry_sdk.capture_message(title, level="error")


def run_failed(
    *, reason: str, system: str | None, status: int | None, source: str | None = None
) -> None:
    """A run halted (a source's, or the job postings'): no record could get through."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("stage", "run")
        if source is not None:
            scope.set_tag("source", source)
        scope.set_tag("remote_system", system or "none")
        scope.set_tag("http_status", str(status) if status is not None else "none")
        scope.set_context("failure", {"reason": reason})
        scope.fingerprint = ["run-failed", source or "none", system or "none"]
        where = f"{source}: " if source else ""
        sentry_sdk.capture_message(
            f"sync run halted: {where}{system or 'hirebridge'}", level="error"
        )


def target_resting(*, target: str, reason: str, status: int | None) -> None:
    """A target refused our credentials or failed offers in a row: it rests for a while."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("stage", "post")
        scope.set_tag("target", target)
        scope.set_tag("remote_system", target)
        scope.set_tag("http_status", str(status) if status is not None else "none")
        scope.set_context("failure", {"reason": reason})
        scope.fingerprint = ["target-resting", target]
        sentry_sdk.capture_message(
            f"target {target} resting: no offer can get through", level="error"
        )


def notice_channel_failed(*, channel: str, service: str, error: str, failures: int) -> None:
    """A notification channel did not take a digest: HR users are not being told."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("stage", "notify")
        scope.set_tag("notice_channel", channel)
        scope.set_tag("notice_service", service)
        scope.set_context("failure", {"error": error, "failures_in_a_row": failures})
        scope.fingerprint = ["notice-channel-failed", channel]
        sentry_sdk.capture_message(
            f"notices not sent to channel {channel} ({service})", level="error"
        )


def shutdown_incomplete(*, grace_seconds: float, offers: list[str], pushes: int) -> None:
    """A stop that had to cancel work: what was left (it resumes on the next start)."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("stage", "shutdown")
        scope.set_context(
            "unfinished", {"offers": offers[:50], "offer_count": len(offers), "pushes": pushes}
        )
        scope.fingerprint = ["shutdown-incomplete"]
        sentry_sdk.capture_message(
            f"stopped after the {grace_seconds:g} s grace with work unfinished", level="warning"
        )


def monitor_slug(slug: str | None, source: str, sources: int) -> str | None:
    """One Sentry Crons monitor per source (the plain slug when there is only one source)."""
    if slug is None or sources <= 1:
        return slug
    return f"{slug}-{source}".replace("_", "-")


def monitor_config(schedule: ScheduleSettings, settings: SentrySettings) -> dict[str, Any]:
    if schedule.cron is not None:
        plan: dict[str, Any] = {"type": "crontab", "value": schedule.cron}
    else:
        minutes = max(1, round((schedule.interval_seconds or 60) / 60))
        plan = {"type": "interval", "value": minutes, "unit": "minute"}
    return {
        "schedule": plan,
        "timezone": schedule.timezone,
        "checkin_margin": settings.checkin_margin_minutes,
        "max_runtime": settings.max_runtime_minutes,
    }


def check_in(slug: str | None, status: str, config: dict[str, Any],
             check_in_id: str | None = None) -> str | None:  # fmt: skip
    """A Sentry Crons check-in ("in_progress", "ok", "error"); returns its id."""
    if slug is None or sentry_sdk.get_client().dsn is None:
        return None
    result: str | None = capture_checkin(
        monitor_slug=slug,
        check_in_id=check_in_id,
        status=status,
        monitor_config=config,  # type: ignore[arg-type]  # a MonitorConfig TypedDict
    )
    return result


def flush(timeout: float = 5.0) -> None:
    sentry_sdk.flush(timeout=timeout)
