"""What operators and admins do from the console, through the same store functions as the CLI
(``retry``, ``skip [--mark-processed]``, ``inbox-retry``, ``jobs link``, ``jobs retry``).
Each is kept in ``manual_actions`` with the signed-in user as ``by``; actions that are not
about one offer (run now, an inbox item, a job, a map) are kept under the source or subject
they concern, the offer id column naming it (``run``, ``inbox#12``, ``job:J-7``, ``map``)."""

from __future__ import annotations

from dataclasses import dataclass

from worker.console.auth import Identity
from worker.console.context import ConsoleContext
from worker.errors import HirebridgeError
from worker.store.inbox import Inbox
from worker.store.interventions import Interventions, OfferKey
from worker.store.jobs import JobLedger
from worker.store.ledger import Ledger
from worker.store.sources import SourceRuns


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str


def _interventions(ctx: ConsoleContext) -> Interventions:
    return Interventions(Ledger(ctx.engine))


async def audit(
    ctx: ConsoleContext,
    who: Identity,
    subject: OfferKey,
    action: str,
    reason: str | None = None,
    target: str | None = None,
) -> None:
    await ctx.run(
        _interventions(ctx).note, subject, action, actor=who.user, reason=reason, target=target
    )


async def retry(
    ctx: ConsoleContext,
    who: Identity,
    key: OfferKey,
    reason: str | None,
    target: str | None = None,
) -> Outcome:
    found = await ctx.run(
        _interventions(ctx).retry, [key], actor=who.user, reason=reason, target=target
    )
    if not found:
        return Outcome(False, f"{key.source}/{key.offer_id}: unknown or already processed")
    return Outcome(True, f"re-queued {key.source}/{key.offer_id}: the next run tries it")


async def skip(
    ctx: ConsoleContext, who: Identity, key: OfferKey, reason: str, *, mark: bool
) -> Outcome:
    """Leave an offer alone; with ``mark``, first tell PageUp it is processed (as
    ``hirebridge skip --mark-processed``)."""
    if not reason.strip():
        return Outcome(False, "a reason is required")
    if mark:
        parts = ctx.sources().get(key.source)
        if parts is None:
            return Outcome(False, f"unknown source {key.source!r}")
        try:
            await parts.pageup.mark_processed(key.offer_id)
        except HirebridgeError as exc:
            return Outcome(False, f"offer {key.offer_id}: PageUp refused: {exc}")
    done = await ctx.run(_interventions(ctx).skip, key, actor=who.user, reason=reason, marked=mark)
    if not done:
        return Outcome(False, f"{key.source}/{key.offer_id}: unknown or already processed")
    told = "marked it processed in PageUp" if mark else "it stays in PageUp's queue"
    return Outcome(True, f"skipped {key.source}/{key.offer_id}; {told}")


async def run_now(ctx: ConsoleContext, who: Identity, source: str | None) -> Outcome:
    """Start a run of one source (or all) at the service's next tick."""
    settings = ctx.settings()
    if source is not None and source not in settings.sources:
        return Outcome(False, f"unknown source {source!r}")
    names = [source] if source else list(settings.sources)
    runs = SourceRuns(ctx.engine, worker_timeout=settings.sync.worker_timeout_seconds)
    await ctx.run(runs.due_now, names)
    for name in names:
        await audit(ctx, who, OfferKey(name, "run"), "run_now")
    return Outcome(True, f"run requested: {', '.join(names)} (it starts within a second)")


async def inbox_retry(ctx: ConsoleContext, who: Identity, item_id: int) -> Outcome:
    store = Inbox(ctx.engine)
    item = await ctx.run(store.get, item_id)
    count = await ctx.run(store.retry_parked, item_id)
    if item is None or not count:
        state = "no such push" if item is None else f"not retried ({item.state})"
        return Outcome(False, f"inbox #{item_id}: {state}")
    await audit(ctx, who, OfferKey(item.source, f"inbox#{item_id}"), "inbox_retry")
    return Outcome(True, f"inbox #{item_id} is due again; the worker delivers it")


async def job_link(ctx: ConsoleContext, who: Identity, source_id: str, ats_job_id: str) -> Outcome:
    settings = ctx.settings()
    if not settings.ats.enabled:
        return Outcome(False, "job postings are not configured (ats.enabled is false)")
    if not source_id.strip() or not ats_job_id.strip():
        return Outcome(False, "give the source job id and the ATS job id")
    await ctx.run(JobLedger(ctx.engine, settings.ats.source_name).link, source_id, ats_job_id)
    await audit(
        ctx,
        who,
        OfferKey(settings.ats.source_name, f"job:{source_id}"),
        "job_link",
        reason=f"ATS job {ats_job_id}",
    )
    return Outcome(True, f"{source_id} is now ATS job {ats_job_id}; the next run updates it")


async def jobs_retry(ctx: ConsoleContext, who: Identity) -> Outcome:
    settings = ctx.settings()
    if not settings.ats.enabled:
        return Outcome(False, "job postings are not configured (ats.enabled is false)")
    count = await ctx.run(JobLedger(ctx.engine, settings.ats.source_name).retry_parked)
    await audit(ctx, who, OfferKey(settings.ats.source_name, "job:*"), "jobs_retry")
    return Outcome(bool(count), f"{count} parked job(s) due again")
