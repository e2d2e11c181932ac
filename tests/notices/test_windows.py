"""When a digest goes out, from the first waiting notice's time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.notices.windows import digest_trigger
from worker.settings import NotificationSettings

SYDNEY = ZoneInfo("Australia/Sydney")


def due(first: datetime, timezone: str = "UTC", **settings: object) -> datetime:
    return digest_trigger(NotificationSettings(**settings), timezone)(first)


def test_immediately_waits_gather_seconds_for_the_burst() -> None:
    first = datetime(2026, 11, 27, 10, 15, 30, tzinfo=UTC)
    assert due(first) == first + timedelta(seconds=60)
    assert due(first, gather_seconds=0) == first


def test_hourly_goes_on_the_next_hour() -> None:
    assert due(datetime(2026, 11, 27, 10, 15, tzinfo=UTC), digest="hourly") == datetime(
        2026, 11, 27, 11, 0, tzinfo=UTC
    )


def test_daily_goes_at_daily_at_in_the_service_time_zone() -> None:
    # 22:30 UTC on the 26th is 09:30 on the 27th in Sydney (AEDT): the next 09:00 is the 28th.
    first = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)
    when = due(first, "Australia/Sydney", digest="daily", daily_at="09:00")
    assert when == datetime(2026, 11, 28, 9, 0, tzinfo=SYDNEY)
    early = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)  # 08:00 in Sydney
    assert due(early, "Australia/Sydney", digest="daily") == datetime(2026, 11, 27, 9, 0,
                                                                       tzinfo=SYDNEY)  # fmt: skip


def test_a_cron_expression_is_a_digest_window() -> None:
    first = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # a Friday
    when = due(first, digest="0 9,14 * * mon-fri")
    assert when == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"digest": "weekly-ish"}, "digest 'weekly-ish'"),
        ({"daily_at": "9am"}, "daily_at '9am' is not HH:MM"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"console_url": "ftp://x"}, "console_url must be an http(s) URL"),
        ({"channels": {"HR": {"url": "json://x"}}}, "channel names are lower-case"),
        ({"channels": {"hr": {"url": "jsons://h/p?verify=no"}}}, "cannot be turned off"),
    ],
)
def test_bad_notification_settings_are_refused(settings: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        NotificationSettings(**settings)
