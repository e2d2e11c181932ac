"""The sync schedule: an interval or a cron expression, in a time zone."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

if TYPE_CHECKING:
    from worker.settings import ScheduleSettings


def trigger_for(schedule: ScheduleSettings) -> BaseTrigger:
    """The APScheduler trigger; ValueError with a plain reason for a bad zone or expression."""
    try:
        zone = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {schedule.timezone!r}") from None
    if schedule.cron is not None:
        try:
            return CronTrigger.from_crontab(schedule.cron, timezone=zone)
        except ValueError as exc:
            raise ValueError(f"bad cron expression {schedule.cron!r}: {exc}") from None
    assert schedule.interval_seconds is not None
    return IntervalTrigger(seconds=schedule.interval_seconds, timezone=zone)
