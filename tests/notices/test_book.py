"""Recording notices: what the pipelines' failure paths leave for the notifier, and that
recording never gets in the way of the offer it is about."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.conftest import Sims
from tests.pipelines.test_offers import MISSING_TFN, ledger_states, run_sync
from worker.errors import PermanentError
from worker.notices.book import NoticeBook
from worker.runtime import open_store
from worker.settings import NotificationSettings, Settings
from worker.store.ledger import Failure, Status
from worker.store.notices import NoticeStore
from worker.store.thread import StoreThread

CHANNEL = {"url": "json://127.0.0.1:9/hook"}  # never sent to here: these tests only record


def notices_of(settings: Settings) -> list[Any]:
    engine = open_store(settings)
    try:
        return [(notice, sends) for _, notice, sends in NoticeStore(engine).recent(100)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("sims", [MISSING_TFN], indirect=True)
def test_a_parked_offer_is_recorded_with_its_position_and_start_date_only(
    sims: Sims, db_url: str
) -> None:
    settings = sims.settings(db_url, notifications={"channels": {"hr": CHANNEL}})

    run_sync(settings)

    parked = sims.samples[2]
    ((notice, sends),) = notices_of(settings)
    assert (notice.kind, notice.source, notice.subject, notice.target) == (
        "offer", "pageup", str(parked.offer_id), "hris",
    )  # fmt: skip
    assert notice.position == parked.offer["PositionTitle"]
    assert notice.start_date == parked.offer["StartDate"][:10]
    assert notice.problem == "the new-starter form has no tax file number"
    assert sends == {"hr": None}  # waiting for the notifier


@pytest.mark.parametrize("sims", [MISSING_TFN], indirect=True)
def test_without_channels_nothing_is_recorded(sims: Sims, db_url: str) -> None:
    settings = sims.settings(db_url)
    run_sync(settings)
    assert notices_of(settings) == []


def test_a_source_refused_by_pageup_is_told_once_per_cause(sims: Sims, db_url: str) -> None:
    data = sims.settings_data(db_url, notifications={"channels": {"hr": CHANNEL}})
    data["pageup"]["client_secret"] = "a-revoked-secret"
    settings = Settings(**data)

    first, second = run_sync(settings), run_sync(settings)

    assert first.halted and second.halted
    ((notice, _),) = notices_of(settings)
    assert notice.kind == "source" and notice.subject is None
    assert notice.problem == "PageUp refused hirebridge's credentials for pageup: no new hire moves"
    assert "sources.pageup.client_secret" in notice.action


def test_a_token_endpoint_that_cannot_be_reached_is_not_told_as_refused_credentials(
    sims: Sims, db_url: str
) -> None:
    data = sims.settings_data(db_url, notifications={"channels": {"hr": CHANNEL}})
    data["pageup"]["token_url"] = f"http://127.0.0.1:{closed_port()}/connect/token"
    settings = Settings(**data)

    assert run_sync(settings).halted

    ((notice, _),) = notices_of(settings)
    assert notice.kind == "source"
    assert notice.problem.startswith("PageUp could not be read for pageup: new hires wait (")
    assert "client_secret" not in notice.action


def test_a_daily_rate_limit_is_told_as_such(sims: Sims, db_url: str) -> None:
    sims.pageup.faults.rate_limit_every = 1
    sims.pageup.faults.retry_after = None  # PageUp's daily limit: no time to wait given
    settings = sims.settings(db_url, notifications={"channels": {"hr": CHANNEL}})

    assert run_sync(settings).halted

    ((notice, _),) = notices_of(settings)
    assert notice.problem == "PageUp's daily call limit for pageup is reached: new hires wait"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe is closed


@pytest.mark.parametrize("sims", [MISSING_TFN], indirect=True)
def test_a_notice_that_cannot_be_recorded_does_not_fail_the_offer(
    sims: Sims, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any) -> Any:
        raise RuntimeError("the notices table is locked")

    monkeypatch.setattr(NoticeStore, "add", refuse)
    dropped = REGISTRY.get_sample_value("hirebridge_spool_dropped_total", {"spool": "notices"})
    settings = sims.settings(db_url, notifications={"channels": {"hr": CHANNEL}})

    report = run_sync(settings)

    assert report.succeeded == 5 and report.parked == 1
    state = ledger_states(settings)[str(sims.samples[2].offer_id)]
    assert state.status == Status.FAILED and state.parked_at is not None
    after = REGISTRY.get_sample_value("hirebridge_spool_dropped_total", {"spool": "notices"})
    assert (after or 0) == (dropped or 0) + 1


def book(channels: dict[str, Any], **settings: Any) -> NoticeBook:
    """A book whose spool is never flushed (no database): for its pure parts."""
    return NoticeBook(None, StoreThread(), NotificationSettings(channels=channels, **settings))  # type: ignore[arg-type]


def test_channels_take_the_kinds_and_sources_they_ask_for() -> None:
    pages = book({
        "all": CHANNEL,
        "offers_au": {**CHANNEL, "kinds": ["offer", "source"], "sources": ["au"]},
        "jobs": {**CHANNEL, "kinds": ["job"]},
        "off": {**CHANNEL, "enabled": False},
    })  # fmt: skip
    assert pages.channels_for("offer", "au") == ("all", "offers_au")
    assert pages.channels_for("offer", "nz") == ("all",)
    assert pages.channels_for("source", "au") == ("all", "offers_au")
    assert pages.channels_for("job", "ats") == ("all", "jobs")
    assert pages.channels_for("push", "apna") == ("all",)


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        ({"PositionTitle": "Registered Nurse", "StartDate": "2027-01-11T00:00:00"},
         ("Registered Nurse", "2027-01-11")),
        ({"Job": {"Title": "Store Manager"}, "StartDate": "2027-01-11"},
         ("Store Manager", "2027-01-11")),
        ({"PositionTitle": {"Name": "x"}, "StartDate": "next Monday"}, (None, None)),
        ({"PositionTitle": "Nurse (ask jo@example.org)", "StartDate": 20270111},
         ("Nurse (ask [email])", None)),
        ({}, (None, None)),
    ],
)  # fmt: skip
def test_the_hire_is_named_by_position_and_start_date_only(
    offer: dict[str, Any], expected: tuple[str | None, str | None]
) -> None:
    assert book({}).hire_of({"offer": offer, "onboarding": {"Answers": []}}) == expected
    assert book({}).hire_of(None) == (None, None)


def test_only_parked_failures_are_noticed() -> None:
    pages = book({"hr": CHANNEL})
    added: list[Any] = []
    pages._spool.add = added.append  # type: ignore[method-assign,assignment]
    error = PermanentError("HTTP 422: bad", system="hris", status=422, stage="post")
    waiting = Failure("post", "permanent", "bad", 422, park=False)
    pages.offer_parked("pageup", "1", "hris", waiting, error)
    assert added == []
    pages.offer_parked("pageup", "1", "hris", Failure("post", "permanent", "bad", 422, park=True),
                       error)  # fmt: skip
    assert len(added) == 1 and added[0].channels == ("hr",)
    asyncio.run(pages.drain())  # nothing queued in the spool itself
