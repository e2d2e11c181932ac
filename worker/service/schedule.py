"""The sync schedule: an interval or a cron expression, in a time zone."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
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


def next_run_after(schedule: ScheduleSettings, due_at: datetime, now: datetime) -> datetime:
    """When a source runs next, after a run that was due at ``due_at`` ended at ``now``.

    An interval keeps the run's own rhythm (due, due + interval, ...): a run that took longer
    than the interval is followed at once by one run, not by the ones it overlapped. A cron
    expression fires at its next time after ``now``.
    """
    if schedule.cron is not None:
        fire = trigger_for(schedule).get_next_fire_time(None, now)
        assert fire is not None  # a crontab always fires again
        return fire  # type: ignore[no-any-return]
    assert schedule.interval_seconds is not None
    interval = timedelta(seconds=schedule.interval_seconds)
    steps = max(1, math.floor((now - due_at) / interval) + 1)
    return due_at + steps * interval
