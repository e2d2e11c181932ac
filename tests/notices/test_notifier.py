"""Notices to HR users, end to end: the offer sync parks hires against the simulators, the
notifier sends the digests to a real SMTP server (STARTTLS, login) and a Teams webhook
receiver on loopback, through Apprise."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.conftest import Sims
from tests.notices.conftest import SmtpInbox, WebhookReceiver
from tests.pipelines.test_offers import MISSING_TFN, run_sync
from worker import alerts
from worker.errors import MappingError
from worker.notices.book import NoticeBook
from worker.notices.channels import build_channels
from worker.notices.notifier import Notifier, NotifyReport
from worker.runtime import open_store
from worker.settings import Settings
from worker.store.ledger import Failure
from worker.store.notices import NoticeStore
from worker.store.thread import StoreThread

MINUTE = timedelta(minutes=1)
MISSING_TFN_MESSAGE = (
    "field 'tax.taxFileNumber': required, but \"answer(onboarding, `11`)\" gave no value"
)
CONSOLE = "https://hirebridge.example.com"


def channels(smtp: SmtpInbox | None, hook: WebhookReceiver | None, **more: Any) -> dict[str, Any]:
    found = {}
    if smtp is not None:
        found["hr_email"] = {"url": smtp.url()}
    if hook is not None:
        found["hr_teams"] = {"url": hook.teams_url()}
    return {"channels": found, "console_url": CONSOLE, **more}


def send(settings: Settings, at: datetime, owner: str = "worker-a") -> NotifyReport:
    """One pass of the notifier as `hirebridge run` makes it, at ``at``."""

    async def go() -> NotifyReport:
        engine = open_store(settings)
        store = StoreThread()
        try:
            notifier = Notifier(
                NoticeStore(engine), store, build_channels(settings.notifications),
                settings.notifications, settings.notice_timezone, owner=owner,
                clock=lambda: at,
            )  # fmt: skip
            return await notifier.send_due()
        finally:
            store.close()
            engine.dispose()

    return asyncio.run(go())


def record(settings: Settings, count: int, first_id: int = 900500) -> None:
    """``count`` offers parked for a missing tax file number, as the offer pipeline records
    them (through the store's thread, in the background)."""

    async def go() -> None:
        engine = open_store(settings)
        store = StoreThread()
        try:
            book = NoticeBook(engine, store, settings.notifications)
            message = MISSING_TFN_MESSAGE
            failure = Failure("map", "mapping", message, None, park=True)
            document = {"offer": {"PositionTitle": "Registered Nurse", "StartDate": "2027-02-01"}}
            for offer_id in range(first_id, first_id + count):
                book.offer_parked("pageup", str(offer_id), "hris", failure,
                                  MappingError([message]), document)  # fmt: skip
            await book.drain()
        finally:
            store.close()
            engine.dispose()

    asyncio.run(go())


def sent_counter(channel: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "hirebridge_notice_sends_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


@pytest.mark.parametrize("sims", [MISSING_TFN], indirect=True)
def test_a_parked_offer_is_told_once_by_email_and_teams(
    sims: Sims, db_url: str, smtp: SmtpInbox, webhook: WebhookReceiver
) -> None:
    settings = sims.settings(db_url, notifications=channels(smtp, webhook))
    report = run_sync(settings)
    assert report.parked == 1
    parked = sims.samples[2]
    now = datetime.now(UTC)

    early = send(settings, now + timedelta(seconds=10))  # within gather_seconds (60)
    assert early.sent == {} and smtp.messages == [] and webhook.received == []
    first = send(settings, now + 2 * MINUTE)

    assert first.sent == {"hr_email": 1, "hr_teams": 1}
    assert smtp.logins == [(b"hr-mailer", b"smtp-Pa55-word")]
    (mail,) = smtp.texts()
    (teams,) = webhook.texts()
    for text in (mail, teams):
        assert "The new-starter form has no tax file number" in text
        assert f"Offer {parked.offer_id}" in text
        assert parked.offer["PositionTitle"] in text
        assert f"starts {parked.offer['StartDate'][:10]}" in text
        assert f"{CONSOLE}/console/offers/pageup/{parked.offer_id}" in text
        assert "hirebridge retry" in text
    assert webhook.received[0][0] == "/workflows/wf0123456789abcdef/triggers/manual/paths/invoke"
    # Sent once: later passes, and a second sync of the same queue, add nothing.
    run_sync(settings)
    assert send(settings, now + 10 * MINUTE).sent == {}
    assert len(smtp.messages) == 1 and len(webhook.received) == 1


def test_a_burst_of_200_parked_offers_is_one_message(
    sims: Sims, db_url: str, smtp: SmtpInbox, webhook: WebhookReceiver
) -> None:
    settings = sims.settings(db_url, notifications=channels(smtp, webhook))
    record(settings, 200)

    report = send(settings, datetime.now(UTC) + 2 * MINUTE)

    assert report.sent == {"hr_email": 200, "hr_teams": 200}
    (mail,) = smtp.texts()
    assert len(webhook.received) == 1
    assert "200 hires need attention" in mail
    assert "The new-starter form has no tax file number. (200)" in mail
    assert mail.count("  - Offer ") == 50  # notifications.max_listed
    assert "... and 150 more not listed here" in mail
    assert mail.count("What to do:") == 1


def test_an_hourly_digest_waits_for_the_hour(sims: Sims, db_url: str, smtp: SmtpInbox) -> None:
    settings = sims.settings(db_url, notifications=channels(smtp, None, digest="hourly"))
    record(settings, 3)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    before = send(settings, hour - timedelta(seconds=1))
    on_the_hour = send(settings, hour)

    assert before.sent == {} and on_the_hour.sent == {"hr_email": 3}
    assert len(smtp.messages) == 1


def test_a_restart_does_not_send_again(
    sims: Sims, db_url: str, smtp: SmtpInbox, webhook: WebhookReceiver
) -> None:
    settings = sims.settings(db_url, notifications=channels(smtp, webhook))
    record(settings, 2)
    now = datetime.now(UTC)
    assert send(settings, now + 2 * MINUTE, owner="before-restart").sent == {
        "hr_email": 2, "hr_teams": 2,
    }  # fmt: skip
    record(settings, 1, first_id=900900)  # recorded, then the process restarts

    after = send(settings, now + 5 * MINUTE, owner="after-restart")
    again = send(settings, now + 9 * MINUTE, owner="after-restart")

    assert after.sent == {"hr_email": 1, "hr_teams": 1} and again.sent == {}
    assert len(smtp.messages) == 2 and len(webhook.received) == 2
    assert "Offer 900900" in smtp.texts()[1] and "Offer 900500" not in smtp.texts()[1]


def test_a_channel_that_is_down_is_tried_again_later_and_sends_once(
    sims: Sims, db_url: str, smtp: SmtpInbox, webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    alerted: list[dict[str, Any]] = []
    monkeypatch.setattr(alerts, "notice_channel_failed", lambda **kw: alerted.append(kw))
    settings = sims.settings(db_url, notifications=channels(smtp, webhook))
    record(settings, 4)
    webhook.down = True
    failed_before = sent_counter("hr_teams", "failed")
    now = datetime.now(UTC)

    first = send(settings, now + 2 * MINUTE)
    webhook.down = False
    too_soon = send(settings, now + 2 * MINUTE + timedelta(seconds=30))
    later = send(settings, now + 4 * MINUTE)
    done = send(settings, now + 30 * MINUTE)

    assert first.sent == {"hr_email": 4} and "hr_teams" in first.failed
    assert "503" in first.failed["hr_teams"] or "Service Unavailable" in first.failed["hr_teams"]
    assert "SiGnAtUrE0123456789" not in first.failed["hr_teams"]  # the channel's credential
    assert sent_counter("hr_teams", "failed") == failed_before + 1
    assert [a["channel"] for a in alerted] == ["hr_teams"] and alerted[0]["failures"] == 1
    assert too_soon.sent == {} and too_soon.failed == {}  # backing off retry_initial_seconds
    assert later.sent == {"hr_teams": 4} and done.sent == {}
    assert len(webhook.received) == 1 and len(smtp.messages) == 1
    state = {c.channel: c for c in _channels(settings)}["hr_teams"]
    assert state.failures == 0 and state.waiting == 0 and state.last_error is None


def test_an_smtp_server_that_refuses_the_login_is_reported_without_the_password(
    sims: Sims, db_url: str, smtp: SmtpInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "notice_channel_failed", lambda **kw: None)
    data = channels(None, None)
    data["channels"] = {"hr_email": {"url": smtp.url(password="Wr0ng-Secret-99")}}
    settings = sims.settings(db_url, notifications=data)
    record(settings, 1)

    report = send(settings, datetime.now(UTC) + 2 * MINUTE)

    assert report.sent == {} and smtp.messages == []
    assert smtp.logins == [(b"hr-mailer", b"Wr0ng-Secret-99")]
    state = {c.channel: c for c in _channels(settings)}["hr_email"]
    assert state.failures == 1 and state.waiting == 1
    assert state.last_error and "Wr0ng-Secret-99" not in state.last_error


def _channels(settings: Settings) -> list[Any]:
    engine = open_store(settings)
    try:
        return NoticeStore(engine).channels()
    finally:
        engine.dispose()


# Values planted in the sample hires: none may reach a notice.
TFN, BSB, ACCOUNT, BIRTH, SALARY = "123456782", "062-911", "10293847", "1985-07-23", 97531
FIRST, LAST, EMAIL = "Zephyrine", "Quokkasdottir", "zephyrine.q@example.org"
PLANTED = (TFN, "123 456 782", BSB, ACCOUNT, BIRTH, str(SALARY), "97,531", FIRST, LAST, EMAIL)


def _plant(sims: Sims, index: int, *, tfn: bool = True) -> str:
    sample = sims.samples[index]
    answers = {11: TFN, 12: BSB, 13: ACCOUNT, 14: BIRTH}
    kept = [a for a in sample.onboarding["Answers"] if a["QuestionID"] not in answers]
    sample.onboarding["Answers"] = kept + [
        {"QuestionID": qid, "Question": f"Question {qid}", "Answer": value}
        for qid, value in answers.items()
        if tfn or qid != 11
    ]
    sample.offer["Salary"]["Amount"] = SALARY
    sample.offer["Applicant"].update(FirstName=FIRST, LastName=LAST, Email=EMAIL)
    return str(sample.offer_id)


def test_no_tax_bank_salary_or_birth_data_in_any_message(
    sims: Sims, db_url: str, smtp: SmtpInbox, webhook: WebhookReceiver
) -> None:
    missing = _plant(sims, 0, tfn=False)  # parked: no tax file number
    echoed = _plant(sims, 1)  # the HRIS refuses it, quoting every value it was sent
    sims.hris.refuse_echoing.add(echoed)
    locked = _plant(sims, 2)  # PageUp refuses it, quoting the applicant
    sims.pageup.refuse_offer[locked] = (
        400, {"Message": f"Offer of {EMAIL} (TFN {TFN}, born {BIRTH}) is locked"},
    )  # fmt: skip
    settings = sims.settings(db_url, notifications=channels(smtp, webhook))

    report = run_sync(settings)
    sent = send(settings, datetime.now(UTC) + 2 * MINUTE)

    assert report.parked == 3 and sent.sent == {"hr_email": 3, "hr_teams": 3}
    texts = smtp.texts() + [raw.decode("utf-8", "replace") for raw in smtp.messages]
    texts += webhook.texts() + webhook.raw() + [str(notice) for _, notice, _ in _recent(settings)]
    for offer_id in (missing, echoed, locked):
        assert f"Offer {offer_id}" in smtp.texts()[0]
    assert "refused this hire" in smtp.texts()[0] and "PageUp refused" in smtp.texts()[0]
    for text in texts:
        leaked = [value for value in PLANTED if value in text]
        assert not leaked, (leaked, text)


def _recent(settings: Settings) -> list[Any]:
    engine = open_store(settings)
    try:
        return NoticeStore(engine).recent(100)
    finally:
        engine.dispose()


def test_a_slack_channel_gets_the_digest_through_its_webhook(
    sims: Sims, db_url: str, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apprise.plugins.slack import NotifySlack

    # Slack's incoming webhooks live at one host; here, the receiver on loopback stands in.
    monkeypatch.setattr(NotifySlack, "webhook_url", f"https://127.0.0.1:{webhook.port}/services")
    data = channels(None, None)
    data["channels"] = {"hr_slack": {
        "url": "https://hooks.slack.com/services/T0001ABCD/B0002EFGH/xoxSeCrEt0123456789ab",
    }}  # fmt: skip
    settings = sims.settings(db_url, notifications=data)
    record(settings, 2)

    report = send(settings, datetime.now(UTC) + 2 * MINUTE)

    assert report.sent == {"hr_slack": 2}
    ((path, body),) = webhook.received
    assert path == "/services/T0001ABCD/B0002EFGH/xoxSeCrEt0123456789ab"
    (text,) = webhook.texts()
    assert "2 hires need attention" in text and "Offer 900501" in text
    assert "blocks" in body or "attachments" in body  # Slack's own message format


def test_a_channel_another_worker_is_sending_is_left_to_it(
    sims: Sims, db_url: str, webhook: WebhookReceiver
) -> None:
    from worker.notices.notifier import LEASE

    settings = sims.settings(db_url, notifications=channels(None, webhook))
    record(settings, 2)
    at = datetime.now(UTC) + 2 * MINUTE
    send(settings, at - timedelta(days=1))  # the channel's row exists; nothing is due yet
    engine = open_store(settings)
    try:  # worker-b holds the lease, as if it were sending this very digest
        assert NoticeStore(engine).claim("hr_teams", "worker-b", at, LEASE) == 0
    finally:
        engine.dispose()

    while_held = send(settings, at, owner="worker-a")
    after_expiry = send(settings, at + LEASE + MINUTE, owner="worker-a")

    assert while_held.sent == {} and while_held.failed == {}
    assert after_expiry.sent == {"hr_teams": 2} and len(webhook.received) == 1


def test_a_database_error_on_one_channel_does_not_stop_the_others(
    sims: Sims, db_url: str, smtp: SmtpInbox, webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    settings = sims.settings(db_url, notifications=channels(smtp, webhook))
    record(settings, 2)
    real_waiting = NoticeStore.waiting

    def waiting(self: NoticeStore, channel: str) -> Any:
        if channel == "hr_email":
            raise RuntimeError("the database went away")
        return real_waiting(self, channel)

    monkeypatch.setattr(NoticeStore, "waiting", waiting)

    report = send(settings, datetime.now(UTC) + 2 * MINUTE)

    assert report.failed == {"hr_email": "RuntimeError"}
    assert report.sent == {"hr_teams": 2}
