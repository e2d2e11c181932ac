"""``hirebridge check`` and the notification channels: a failing channel fails the check with
its reason; ``--test-notice`` really sends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.conftest import Sims
from tests.notices.conftest import WebhookReceiver
from tests.notices.test_notifier import MINUTE, channels, record, send
from worker import alerts
from worker.service.check import Check, run_checks
from worker.settings import Settings


def channel_checks(settings: Settings, *, test_notice: bool = False) -> dict[str, Check]:
    checks = asyncio.run(run_checks(settings, test_notice=test_notice))
    return {c.name: c for c in checks if c.name.startswith("channel ")}


def test_a_channel_whose_sends_fail_fails_the_check_with_its_reason(
    sims: Sims, db_url: str, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "notice_channel_failed", lambda **kw: None)
    settings = sims.settings(db_url, notifications=channels(None, webhook))
    before = channel_checks(settings)
    record(settings, 3)
    webhook.down = True
    send(settings, datetime.now(UTC) + 2 * MINUTE)

    after = channel_checks(settings)

    assert before["channel hr_teams"].ok
    check = after["channel hr_teams"]
    assert not check.ok
    assert "1 send(s) in a row failed, 3 notice(s) wait" in check.detail
    assert "next try" in check.detail
    assert "SiGnAtUrE0123456789" not in check.detail  # the channel's credential


def test_test_notice_sends_each_channel_a_message(
    sims: Sims, db_url: str, webhook: WebhookReceiver
) -> None:
    settings = sims.settings(db_url, notifications=channels(None, webhook))

    checks = channel_checks(settings, test_notice=True)

    assert checks["channel hr_teams"].ok, checks
    assert "test message sent" in checks["channel hr_teams"].detail
    (text,) = webhook.texts()
    assert "hirebridge: test notice" in text


def test_test_notice_names_a_channel_that_does_not_take_it(
    sims: Sims, db_url: str, webhook: WebhookReceiver
) -> None:
    webhook.down = True
    settings = sims.settings(db_url, notifications=channels(None, webhook))

    check = channel_checks(settings, test_notice=True)["channel hr_teams"]

    assert not check.ok and "the test message was not taken" in check.detail
