"""Sending the recorded notices: a job of its own in ``hirebridge run``, off the offer lanes.

For each channel, once its digest is due (``worker.notices.windows``): take the channel's
lease, send everything waiting there as one message (``worker.notices.digest``), then mark it
sent. A channel that fails is tried again after a growing delay and reported in logs, metrics
and Sentry; the others, and the sync, go on. Each notice goes out once per channel: the
``sent_at`` recorded after the send is what a restart reads. A crash between the send and that
record sends the digest again on the next start (at least once: email and chat offer no
idempotency key to settle it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from worker import alerts, metrics
from worker.notices.channels import Channel, ChannelError
from worker.notices.digest import compose
from worker.notices.windows import digest_trigger
from worker.settings import NotificationSettings
from worker.store.notices import NoticeStore
from worker.store.thread import StoreThread
from worker.store.workers import new_worker_id

log = structlog.get_logger(__name__)
# A channel's lease while one worker sends its digest: far longer than a send can take
# (Apprise gives up on a connection within its own timeouts, seconds to a minute).
LEASE = timedelta(minutes=5)


@dataclass
class NotifyReport:
    sent: dict[str, int] = field(default_factory=dict)  # channel -> notices in its digest
    failed: dict[str, str] = field(default_factory=dict)  # channel -> why


class Notifier:
    def __init__(
        self, notices: NoticeStore, store: StoreThread, channels: Mapping[str, Channel],
        settings: NotificationSettings, timezone: str, *, owner: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self._notices = notices
        self._store = store
        self.channels = dict(channels)
        self._settings = settings
        self._timezone = timezone
        self._due_at = digest_trigger(settings, timezone)
        self._owner = owner or new_worker_id()
        self._clock = clock
        self._ready = False

    async def send_due(self) -> NotifyReport:
        """Send each channel's digest that is due; returns what was sent and what failed."""
        report = NotifyReport()
        if not self.channels:
            return report
        if not self._ready:
            await self._store.call(self._notices.ensure_channels, list(self.channels))
            self._ready = True
        for name, channel in self.channels.items():
            try:
                await self._one(name, channel, report)
            except Exception as exc:  # the database refused: this channel waits, not the others
                report.failed[name] = type(exc).__name__
                log.error("notices_not_sent", channel=name, service=channel.service,
                          error=type(exc).__name__)  # fmt: skip
        return report

    async def _one(self, name: str, channel: Channel, report: NotifyReport) -> None:
        now = self._clock()
        first = await self._store.call(self._notices.first_waiting, name)
        if first is None or self._due_at(first) > now:
            return
        failures = await self._store.call(self._notices.claim, name, self._owner, now, LEASE)
        if failures is None:
            return  # another worker sends it, or the channel is backing off
        waiting = await self._store.call(self._notices.waiting, name)
        metrics.NOTICES_WAITING.labels(name).set(len(waiting))
        if not waiting:
            await self._store.call(self._notices.release, name, self._owner)
            return
        settings = self._settings
        title, body = compose(waiting, console_url=settings.console_url,
                              timezone=self._timezone, max_listed=settings.max_listed)  # fmt: skip
        try:
            await asyncio.to_thread(channel.send, title, body)
        except ChannelError as exc:
            await self._failed(name, channel, str(exc), failures, len(waiting))
            report.failed[name] = str(exc)
            return
        ids = [w.id for w in waiting]
        await self._store.call(self._notices.mark_sent, name, ids, self._owner, self._clock())
        metrics.NOTICE_SENDS.labels(name, "sent").inc()
        metrics.NOTICES_WAITING.labels(name).set(0)
        metrics.NOTICE_CHANNEL_FAILING.labels(name).set(0)
        log.info("notices_sent", channel=name, service=channel.service, notices=len(ids))
        report.sent[name] = len(ids)

    async def _failed(
        self, name: str, channel: Channel, error: str, failures: int, waiting: int
    ) -> None:
        settings = self._settings
        delay = min(settings.retry_max_seconds, settings.retry_initial_seconds * 2**failures)
        retry_at = self._clock() + timedelta(seconds=delay)
        total = await self._store.call(self._notices.mark_failed, name, self._owner, error,
                                       retry_at)  # fmt: skip
        metrics.NOTICE_SENDS.labels(name, "failed").inc()
        metrics.NOTICE_CHANNEL_FAILING.labels(name).set(total)
        log.error("notices_not_sent", channel=name, service=channel.service, error=error,
                  failures_in_a_row=total, notices_waiting=waiting,
                  next_attempt_at=retry_at)  # fmt: skip
        alerts.notice_channel_failed(channel=name, service=channel.service, error=error,
                                     failures=total)  # fmt: skip
