"""What the console shows: plain, JSON-ready data, shared by the pages and the API.

Every function takes the signed-in identity: free texts are scrubbed for viewers
(``masking.text_for``). Figures come from the same store functions as ``hirebridge status``,
``parked``, ``inbox`` and ``jobs status``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from worker import metrics
from worker.console.auth import Identity
from worker.console.context import ConsoleContext
from worker.console.masking import text_for
from worker.store.attempts import AttemptHistory, AttemptRow
from worker.store.browse import Browse, OfferFilter
from worker.store.inbox import Inbox
from worker.store.interventions import Interventions, OfferKey
from worker.store.jobs import JobLedger
from worker.store.ledger import Ledger, OfferState, TargetState
from worker.store.runs import Runs
from worker.store.sources import SourceRuns

STATES = ("pending", "posting", "posted", "failed", "processed", "skipped")


def iso(value: object) -> str | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _personal(who: Identity) -> bool:
    return who.may("operator")


async def overview(ctx: ConsoleContext, who: Identity) -> dict[str, Any]:
    """Health, remote systems, schedule, recent runs, offers, inbound and jobs at a glance."""
    settings, engine = ctx.settings(), ctx.engine
    ledger = Ledger(engine)
    counts = await ctx.run(ledger.counts)
    oldest = await ctx.run(ledger.oldest_waiting_since)
    parked = await ctx.run(Browse(engine).offers, OfferFilter(parked=True), page=1, size=1)
    source_rows = await ctx.run(
        SourceRuns(engine, worker_timeout=settings.sync.worker_timeout_seconds).rows,
        list(settings.sources),
    )
    inbox = await ctx.run(Inbox(engine).counts)
    jobs = None
    if settings.ats.enabled:
        jobs = await ctx.run(JobLedger(engine, settings.ats.source_name).counts)
    now = time.time()
    return {
        "health": await ctx.health(),
        "remote_systems": [
            {
                "system": system,
                "last_call_at": iso(datetime.fromtimestamp(at, UTC)),
                "seconds_ago": round(now - at, 1),
                "stage": stage,
                "status": status,
            }
            for system, (at, stage, status) in sorted(metrics.LAST_CALLS.items())
        ],
        "schedule": [_schedule(settings, row) for row in source_rows],
        "recent_runs": await runs(ctx, who, limit=10),
        "offers": {
            "by_state": {state: counts.get(state, 0) for state in STATES},
            "parked": parked.total,
            "oldest_waiting": [
                {"source": source, "since": iso(since)} for source, since in sorted(oldest.items())
            ],
        },
        "inbound": [
            {"source": source, "state": state, "count": n}
            for (source, state), n in sorted(inbox.items())
        ],
        "jobs": jobs,
        "sources": list(settings.sources),
        "targets": list(settings.targets),
    }


def _schedule(settings: Any, row: Any) -> dict[str, Any]:
    schedule = settings.schedule_of(row.source) if row.source in settings.sources else None
    every = (
        None
        if schedule is None
        else f"cron {schedule.cron} ({schedule.timezone})"
        if schedule.cron
        else f"every {schedule.interval_seconds:g} s"
    )
    return {
        "source": row.source,
        "schedule": every,
        "next_run_at": iso(row.next_run_at),
        "running": row.lease_owner is not None,
        "halted": row.halted,
        "last_started_at": iso(row.last_started_at),
        "last_finished_at": iso(row.last_finished_at),
    }


async def runs(
    ctx: ConsoleContext, who: Identity, *, limit: int = 50, source: str | None = None
) -> list[dict[str, Any]]:
    rows = await ctx.run(Runs(ctx.engine).last, limit, source=source)
    found = []
    for run in rows:
        started, finished = run.get("started_at"), run.get("finished_at")
        duration = None
        if isinstance(started, datetime) and isinstance(finished, datetime):
            duration = round((finished - started).total_seconds(), 1)
        found.append(
            {
                "run_id": run["run_id"],
                "source": run["source"],
                "started_at": iso(started),
                "finished_at": iso(finished),
                "duration_seconds": duration,
                "outcome": run["outcome"] or "running",
                "listed": run["listed"],
                "succeeded": run["succeeded"],
                "failed": run["failed"],
                "parked": run["parked"],
                "invalid_entries": run.get("invalid_entries") or 0,
                "halt_reason": text_for(_personal(who), _str(run.get("error"))),
            }
        )
    return found


def offer_summary(offer: OfferState, who: Identity) -> dict[str, Any]:
    parked = offer.parked_at is not None or any(t.parked_at for t in offer.targets)
    return {
        "source": offer.source,
        "offer_id": offer.offer_id,
        "status": offer.status.value,
        "stage": offer.stage,
        "attempts": offer.attempts,
        "parked": parked,
        "parked_at": iso(offer.parked_at),
        "next_attempt_at": iso(offer.next_attempt_at),
        "reason": text_for(_personal(who), offer.last_error),
        "error_kind": offer.error_kind,
        "http_status": offer.http_status,
        "updated_at": iso(offer.updated_at),
        "targets": [_target(t, who) for t in offer.targets],
    }


def _target(target: TargetState, who: Identity) -> dict[str, Any]:
    return {
        "target": target.target,
        "status": target.status.value,
        "stage": target.stage,
        "attempts": target.attempts,
        "record_id": target.record_id,
        "reason": text_for(_personal(who), target.last_error),
        "http_status": target.http_status,
        "posted_at": iso(target.posted_at),
        "next_attempt_at": iso(target.next_attempt_at),
        "parked_at": iso(target.parked_at),
    }


async def offers(
    ctx: ConsoleContext, who: Identity, wanted: OfferFilter, page: int
) -> dict[str, Any]:
    settings = ctx.settings()
    size, sources = settings.console.page_size, list(settings.sources)
    found = await ctx.run(Browse(ctx.engine).offers, wanted, page=page, size=size,
                          sources=sources)  # fmt: skip
    return {
        "offers": [offer_summary(offer, who) for offer in found.offers],
        "total": found.total,
        "more": found.more,
        "page": found.page,
        "pages": found.pages,
        "size": found.size,
        "filter": {key: value for key, value in asdict(wanted).items() if value is not None},
    }


async def offer(
    ctx: ConsoleContext, who: Identity, source: str, offer_id: str
) -> dict[str, Any] | None:
    """One offer: its state, targets, timeline, map versions and the audit trail."""
    ledger, browse = Ledger(ctx.engine), Browse(ctx.engine)
    found = await ctx.run(ledger.get, source, offer_id)
    if found is None:
        return None
    key = OfferKey(source, offer_id)
    actions = await ctx.run(Interventions(ledger).actions, key)
    versions = await ctx.run(browse.mapping_versions, source, offer_id)
    steps = await ctx.run(browse.steps, source, offer_id)
    history = AttemptHistory(ctx.engine)
    tried = await ctx.run(history.of, source, offer_id)
    latest = await ctx.run(history.steps, source, offer_id)
    detail = offer_summary(found, who)
    detail["application_id"] = found.application_id
    detail["last_run_id"] = found.last_run_id
    detail["mapping_versions"] = versions
    detail["timeline"] = _timeline(found, steps, latest)
    detail["attempt_history"] = [_attempt(row, who) for row in tried]
    detail["actions"] = [
        {
            "at": iso(a["at"]),
            "action": a["action"],
            "by": a["actor"],
            "target": a["target"],
            "reason": text_for(_personal(who), _str(a["reason"])),
        }
        for a in actions
    ]
    return detail


def _attempt(row: AttemptRow, who: Identity) -> dict[str, Any]:
    return {
        "attempt": row.attempt,
        "target": row.target,
        "outcome": row.outcome,
        "stage": row.stage,
        "error_kind": row.error_kind,
        "reason": text_for(_personal(who), row.reason),
        "http_status": row.http_status,
        "record_id": row.record_id,
        "mapping_version": row.mapping_version,
        "next_attempt_at": iso(row.next_attempt_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "run_id": row.run_id,
    }


def _timeline(
    found: OfferState, steps: list[dict[str, Any]], latest: dict[str, datetime | None]
) -> list[dict[str, Any]]:
    """The offer's way so far, in time order; claimed, fetched and mapped are the latest
    attempt's (earlier ones are in the attempt history)."""
    events: list[tuple[datetime | None, str, str]] = [
        (found.first_seen_at, "seen", "listed in PageUp's queue"),
        (latest.get("claimed"), "claimed", f"attempt {found.attempts}"),
        (latest.get("fetched"), "fetched", "source document read from PageUp"),
        (found.routed_at, "routed", ", ".join(t.target for t in found.targets) or "-"),
        (latest.get("mapped"), "mapped", "field maps applied"),
    ]
    for step in steps:
        events.append(
            (
                step["updated_at"],
                f"step {step['step']}",
                f"{step['target']}: {step['status']}, id {step['record_id'] or '-'}",
            )
        )
    for target in found.targets:
        if target.posted_at is not None:
            events.append(
                (target.posted_at, f"posted to {target.target}", f"id {target.record_id or '-'}")
            )
    if found.processed_at is not None:
        events.append((found.processed_at, "marked", "marked processed in PageUp"))
    if found.parked_at is not None:
        events.append((found.parked_at, "parked", found.stage or "-"))
    known = [(when, what, detail) for when, what, detail in events if when is not None]
    known.sort(
        key=lambda event: event[0].replace(tzinfo=UTC) if event[0].tzinfo is None else event[0]
    )
    return [{"at": iso(when), "event": what, "detail": detail} for when, what, detail in known]


async def inbox(ctx: ConsoleContext, who: Identity, source: str | None) -> dict[str, Any]:
    store = Inbox(ctx.engine)
    counts = await ctx.run(store.counts)
    waiting = await ctx.run(store.undelivered, 200)
    items = [
        {
            "id": i.id,
            "source": i.source,
            "state": i.state,
            "attempts": i.attempts,
            "repeats": i.repeats,
            "received_at": iso(i.received_at),
            "reason": text_for(_personal(who), i.last_error),
            "key": i.dedup_key if _personal(who) else None,
        }
        for i in waiting
        if source in (None, i.source)
    ]
    return {
        "counts": [{"source": s, "state": st, "count": n} for (s, st), n in sorted(counts.items())],
        "undelivered": items,
    }


async def jobs(ctx: ConsoleContext, who: Identity) -> dict[str, Any]:
    settings = ctx.settings()
    if not settings.ats.enabled:
        return {"enabled": False, "counts": {}, "failing": []}
    ledger = JobLedger(ctx.engine, settings.ats.source_name)
    counts = await ctx.run(ledger.counts)
    troubled = await ctx.run(ledger.troubled, 200)
    return {
        "enabled": True,
        "counts": counts,
        "failing": [
            {
                "source_id": j.source_id,
                "ats_job_id": j.ats_job_id,
                "status": j.status,
                "parked": j.parked_at is not None,
                "attempts": j.attempts,
                "reason": text_for(_personal(who), j.last_error),
                "next_attempt_at": iso(j.next_attempt_at),
            }
            for j in troubled
        ],
    }
