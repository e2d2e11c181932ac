"""When a digest goes out: the first notice waiting on a channel sets when, and every notice
waiting then goes with it, so a burst of failures is one message.

- ``immediately``: ``gather_seconds`` after the first notice (time for the burst to finish);
- ``hourly``: on the next hour; ``daily``: at the next ``daily_at``; or a cron expression;
  each in the digest's time zone (``notifications.timezone``, else the service's).

Computed from the first notice's own time, which is stored, so a restart changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

if TYPE_CHECKING:
    from worker.settings.support import NotificationSettings

DueAt = Callable[[datetime], datetime]  # the first waiting notice's time -> the digest's time


def digest_trigger(settings: NotificationSettings, timezone: str) -> DueAt:
    """The digest's timing; ValueError with a plain reason for a bad zone or expression."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    digest = settings.digest.strip()
    if digest == "immediately":
        gather = timedelta(seconds=settings.gather_seconds)
        return lambda first: first + gather
    if digest == "hourly":
        crontab = "0 * * * *"
    elif digest == "daily":
        hour, minute = settings.daily_at.split(":")
        crontab = f"{int(minute)} {int(hour)} * * *"
    else:
        crontab = digest
    try:
        trigger = CronTrigger.from_crontab(crontab, timezone=zone)
    except ValueError as exc:
        raise ValueError(
            f"digest {digest!r}: immediately, hourly, daily or a cron expression ({exc})"
        ) from None

    def due_at(first: datetime) -> datetime:
        fire: datetime | None = trigger.get_next_fire_time(None, first)
        assert fire is not None  # a crontab always fires again
        return fire

    return due_at
