"""The applications flow against the PageUp and HRIS simulators over loopback: paging, once
per change, withdrawn and deleted applications, a job PageUp does not have, bad bodies,
parking, retry and skip, notices."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from tests.conftest import REPO, Sims
from worker.application_runtime import application_syncs
from worker.pipelines.applications import ApplicationRunReport
from worker.runtime import open_store
from worker.settings import NotificationSettings, Settings
from worker.simulators import hris
from worker.simulators.server import BackgroundServer
from worker.store.applications import ApplicationLedger, AppState
from worker.store.notices import NoticeStore

FAST = {"retry_backoff_initial_seconds": 0, "circuit_breaker_failures": 100}
JOB, COUNT, PAGE = 3001, 25, 10  # 25 applications: three pages of 10


class Rig:
    def __init__(self, sims: Sims, db_url: str) -> None:
        self.sims, self.db_url = sims, db_url
        self.sim = sims.pageup.applications
        self.sim.add_job(JOB, COUNT)
        sims.hris.required = ("externalId",)  # a candidate record, not a new employee

    def settings(self, mapping: Path | None = None, **applications: Any) -> Settings:
        data = self.sims.settings_data(self.db_url, sync=FAST)
        data["pageup"]["paging"] = {"mode": "page_number", "page_size": PAGE}
        data["pageup"]["applications"] = {
            "enabled": True, "job_ids": [str(JOB)], "targets": ["hris"], **applications,
        }  # fmt: skip
        mapping = mapping or REPO / "mappings" / "example_applications.yaml"
        data["hris"]["applications_mapping"] = str(mapping)
        return Settings(**data)

    def run(self, settings: Settings | None = None) -> ApplicationRunReport:
        settings = settings or self.settings()

        async def go() -> ApplicationRunReport:
            async with application_syncs(settings) as syncs:
                return await syncs["pageup"].run()

        return asyncio.run(go())

    def ledger(self) -> dict[str, AppState]:
        engine = open_store(self.settings())
        try:
            states = ApplicationLedger(engine).states("pageup", str(JOB))
        finally:
            engine.dispose()
        return {application_id: state for (application_id, _), state in states.items()}

    def record(self, application_id: int) -> Any:
        (record,) = [r for r in self.sims.hris.records.values()
                     if r["externalId"] == f"app-{application_id}"]  # fmt: skip
        return record


@pytest.fixture
def rig(sims: Sims, db_url: str) -> Rig:
    return Rig(sims, db_url)


def test_three_pages_of_applications_each_delivered_once(rig: Rig, sims: Sims) -> None:
    report = rig.run()

    assert (report.listed, report.created, report.failed, report.ok) == (COUNT, COUNT, 0, True)
    assert sims.pageup.calls["list_applications"] == 3  # pages of 10, 10 and 5
    ids = sims.hris.external_ids()
    assert sorted(ids) == sorted(f"app-{800001 + i}" for i in range(COUNT))
    assert set(ids.values()) == {1}
    assert sims.pageup.calls["get_applicant"] == COUNT
    assert sims.pageup.calls["get_application_form"] == COUNT
    record = rig.record(800007)
    assert record["jobId"] == str(JOB) and record["applicantId"] == "600007"
    assert record["rightToWork"] in ("Yes", "No")
    assert all(state.status == "delivered" and state.sends == 1 for state in rig.ledger().values())


def next_link_settings(rig: Rig, style: str) -> Settings:
    rig.sim.link_page_size, rig.sim.link_style = PAGE, style
    settings = rig.settings()
    source = settings.sources["pageup"]
    linked = source.model_copy(update={"paging": source.paging.model_copy(
        update={"mode": "next_link"})})  # fmt: skip
    return settings.model_copy(update={"sources": {"pageup": linked}})


@pytest.mark.parametrize("style", ["absolute", "rooted", "relative"])
def test_next_links_are_followed_to_the_last_page(rig: Rig, sims: Sims, style: str) -> None:
    settings = next_link_settings(rig, style)

    report = rig.run(settings)

    assert (report.listed, report.created, report.ok) == (COUNT, COUNT, True)
    assert sims.pageup.calls["list_applications"] == 3  # each page names the next: no more
    assert sorted(sims.hris.external_ids()) == sorted(f"app-{800001 + i}" for i in range(COUNT))
    job = rig.sim.jobs[str(JOB)]
    gone = job.applications.pop(COUNT - 1)  # on the last page: seen missing only if it is read
    again = rig.run(settings)
    assert (again.removed, again.unchanged) == (1, COUNT - 1)
    assert rig.ledger()[str(gone["ApplicationInfo"]["PUReferenceID"])].status == "removed"


def test_a_next_link_to_another_host_is_not_followed(rig: Rig, sims: Sims) -> None:
    settings = next_link_settings(rig, "absolute")
    rig.run(settings)
    rig.sim.link_style = "elsewhere"  # our token would go with the request

    report = rig.run(settings)

    (problem,) = report.job_problems
    assert "the next page link leads to https://elsewhere.example, not to PageUp's API" in problem
    assert (report.listed, report.removed, report.unchanged) == (0, 0, 0)
    assert sims.pageup.calls["list_applications"] == 4  # three pages, then the first one again
    assert all(state.status == "delivered" for state in rig.ledger().values())


def test_an_unchanged_application_is_not_sent_again(rig: Rig, sims: Sims) -> None:
    rig.run()
    posts, puts = sims.hris.calls["post"], sims.hris.calls["put"]

    again = rig.run()

    assert (again.unchanged, again.created, again.updated) == (COUNT, 0, 0)
    assert (sims.hris.calls["post"], sims.hris.calls["put"]) == (posts, puts)
    assert sims.hris.calls["find"] == COUNT  # only the first run's look-ups


def test_a_changed_application_is_sent_once_as_an_update(rig: Rig, sims: Sims) -> None:
    rig.run()
    rig.sim.entry(800003)["ApplicationInfo"]["Stage"] = "Offer"
    posts, finds = sims.hris.calls["post"], sims.hris.calls["find"]

    changed = rig.run()
    after = rig.run()

    assert (changed.updated, changed.unchanged, changed.created) == (1, COUNT - 1, 0)
    assert (after.updated, after.unchanged) == (0, COUNT)
    assert sims.hris.calls["put"] == 1  # straight to the record the target gave: no look-up
    assert (sims.hris.calls["post"], sims.hris.calls["find"]) == (posts, finds)
    assert rig.record(800003)["stage"] == "Offer"
    assert sims.hris.external_ids()["app-800003"] == 1  # updated, not created twice
    assert rig.ledger()["800003"].sends == 2


def test_a_withdrawn_application_is_left_out_by_the_map_and_kept_at_the_target(
    rig: Rig, sims: Sims
) -> None:
    rig.run()
    rig.sim.entry(800004)["ApplicationInfo"]["Status"] = "Withdrawn"
    calls = dict(sims.hris.calls)

    report = rig.run()

    assert (report.not_chosen, report.unchanged, report.updated) == (1, COUNT - 1, 0)
    assert dict(sims.hris.calls) == calls  # nothing sent, nothing deleted
    assert rig.record(800004)["status"] == "Active"
    assert rig.ledger()["800004"].status == "not_chosen"


def test_a_deleted_application_is_marked_removed_and_nothing_is_sent(rig: Rig, sims: Sims) -> None:
    rig.run()
    job = rig.sim.jobs[str(JOB)]
    gone = job.applications.pop(4)  # application 800005
    calls = dict(sims.hris.calls)

    report = rig.run()

    assert (report.removed, report.unchanged, report.listed) == (1, COUNT - 1, COUNT - 1)
    assert dict(sims.hris.calls) == calls
    assert rig.ledger()["800005"].status == "removed"
    assert sims.hris.external_ids()["app-800005"] == 1  # the target keeps its record

    job.applications.insert(4, gone)
    back = rig.run()
    assert (back.removed, back.unchanged, back.created) == (0, COUNT, 0)
    assert rig.ledger()["800005"].status == "delivered"


def test_nothing_is_removed_when_an_entry_cannot_be_read(rig: Rig, sims: Sims) -> None:
    rig.run()
    job = rig.sim.jobs[str(JOB)]
    job.applications[0] = {"ApplicationInfo": {"Status": "Active"}}  # no id: 800001 unseen

    report = rig.run()

    assert report.removed == 0 and not report.ok
    assert report.invalid_entries == [
        f"job {JOB} page 1 entry 1: no application id at ApplicationInfo.PUReferenceID"
    ]
    assert rig.ledger()["800001"].status == "delivered"


def test_a_job_pageup_does_not_have_is_named_with_its_source(rig: Rig, sims: Sims) -> None:
    report = rig.run(rig.settings(job_ids=["999", str(JOB)]))

    assert report.job_problems == [
        "source pageup: job 999 (lJobID): PageUp has no such job (404); correct "
        "sources.pageup.applications"
    ]
    assert report.created == COUNT and not report.halted and not report.ok
    engine = open_store(rig.settings())
    try:
        jobs = {job.job_key: job for job in ApplicationLedger(engine).jobs("pageup")}
    finally:
        engine.dispose()
    assert jobs["999"].http_status == 404 and "no such job" in (jobs["999"].last_error or "")
    assert jobs[str(JOB)].listed == COUNT and jobs[str(JOB)].last_error is None


def test_a_job_by_its_external_id(rig: Rig, sims: Sims) -> None:
    report = rig.run(rig.settings(job_ids=[], external_job_ids=[f"REQ-{JOB}"]))

    assert (report.listed, report.created) == (COUNT, COUNT)
    assert rig.record(800001)["jobId"] == f"REQ-{JOB}"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"Total": 3}, "applications list is neither a JSON array nor an envelope holding one"),
        (None, "applications list is neither a JSON array nor an envelope holding one"),
    ],
)
def test_a_bad_list_body_is_a_clear_job_problem(
    rig: Rig, sims: Sims, body: Any, problem: str
) -> None:
    rig.sim.broken_lists[str(JOB)] = body

    report = rig.run()

    (text,) = report.job_problems
    assert text.startswith(f"source pageup: job {JOB} (lJobID): ") and problem in text
    assert report.created == 0 and sims.hris.calls["post"] == 0


@pytest.mark.parametrize(
    ("break_it", "reason"),
    [
        (lambda sim: sim.broken_applicants.update({"600002": None}),
         "the applicant document is JSON null, not an object"),
        (lambda sim: sim.broken_applicants.update({"600002": {"FirstName": "X"}}),
         "the applicant document does not name its applicant id"),
        (lambda sim: sim.misdirect_applicant.update({"600002": "600003"}),
         "asked for applicant 600002, PageUp answered with applicant 600003's"),
        (lambda sim: sim.forms["800002"].update({"PUReferenceID": 800009}),
         "asked for application 800002's form, got application 800009's"),
        (lambda sim: sim.forms["800002"].update({"Answers": {"QuestionID": 31}}),
         "the application form's Answers is a JSON object, not a list"),
        (lambda sim: sim.entry(800002)["JobInfo"].update({"PUReferenceID": 4004}), None),
    ],
)  # fmt: skip
def test_a_document_about_another_record_or_of_a_bad_shape_is_refused(
    rig: Rig, sims: Sims, break_it: Any, reason: str | None
) -> None:
    break_it(rig.sim)

    report = rig.run()

    assert report.created == COUNT - 1
    assert "app-800002" not in sims.hris.external_ids()
    if reason is None:  # an entry listed under another job is not read at all
        assert report.invalid_entries == [
            f"job {JOB} page 1 entry 2: application 800002 is listed under job 4004"
        ]
        return
    state = rig.ledger()["800002"]
    assert state.status == "failed" and state.parked_at is not None
    assert reason in (state.last_error or "")


def test_a_refused_application_parks_tells_hr_and_is_retried_on_request(
    rig: Rig, sims: Sims
) -> None:
    sims.hris.refuse_echoing.add("app-800006")
    channel = {"hr": {"url": "json://127.0.0.1:9/hook"}}
    settings = rig.settings().model_copy(
        update={"notifications": NotificationSettings(channels=channel)}
    )

    report = rig.run(settings)

    assert (report.failed, report.created) == (1, COUNT - 1)
    state = rig.ledger()["800006"]
    assert state.parked_at is not None and state.stage == "post"
    engine = open_store(settings)
    try:
        ((_, notice, _),) = NoticeStore(engine).recent()
        ledger = ApplicationLedger(engine)
        assert ledger.retry("pageup", None, target=None, actor="t", reason="fixed") == [
            ledger_key("800006")
        ]
    finally:
        engine.dispose()
    assert (notice.kind, notice.subject, notice.target) == ("application", "800006", "hris")
    assert notice.problem.startswith("Application 800006 (job 3001) could not be sent to hris")
    for value in rig.sim.applicants["600006"].values():  # no personal data in the notice
        assert str(value) not in notice.problem

    sims.hris.refuse_echoing.clear()
    fixed = rig.run()
    assert (fixed.created, fixed.failed, fixed.unchanged) == (1, 0, COUNT - 1)
    assert sims.hris.external_ids()["app-800006"] == 1


def test_a_parked_application_waits_and_a_skipped_one_is_never_sent(rig: Rig, sims: Sims) -> None:
    sims.hris.refuse_echoing.add("app-800006")
    rig.run()
    second = rig.run()
    assert (second.waiting, second.failed) == (1, 0)
    engine = open_store(rig.settings())
    try:
        ledger = ApplicationLedger(engine)
        assert ledger.skip("pageup", "800006", target=None, actor="t", reason="duplicate")
        sims.hris.refuse_echoing.clear()
        ledger.retry("pageup", None, target=None, actor="t", reason=None)  # parked ones only
    finally:
        engine.dispose()
    third = rig.run()
    assert (third.waiting, third.created) == (1, 0)
    assert "app-800006" not in sims.hris.external_ids()
    assert rig.ledger()["800006"].status == "skipped"


def ledger_key(application_id: str) -> Any:
    from worker.store.applications import AppKey

    return AppKey("pageup", "hris", application_id)


def test_the_scope_is_requested_only_when_the_flow_is_on(rig: Rig) -> None:
    on = rig.settings(enabled=True).model_copy()
    source = on.sources["pageup"]
    narrow = source.model_copy(update={"scopes": ["Public.Offer.Read"]})
    off = narrow.model_copy(update={"applications": narrow.applications.model_copy(
        update={"enabled": False})})  # fmt: skip

    assert narrow.requested_scopes == ["Public.Offer.Read", "Public.Application.Read"]
    assert off.requested_scopes == ["Public.Offer.Read"]


def test_settings_refuse_a_target_without_an_applications_map(rig: Rig) -> None:
    data = rig.sims.settings_data(rig.db_url)
    data["pageup"]["applications"] = {"enabled": True, "job_ids": ["1"], "targets": ["hris"]}

    with pytest.raises(ValidationError) as caught:
        Settings(**data)

    assert "sources.pageup.applications.targets: target 'hris' has no applications_mapping" in (
        str(caught.value)
    )


@pytest.mark.parametrize(
    ("applications", "problem"),
    [
        ({"enabled": True, "targets": ["hris"]}, "give job_ids or external_job_ids"),
        ({"enabled": True, "job_ids": ["1"]}, "give targets"),
        ({"job_ids": ["a/b"]}, "job id 'a/b': not an id"),
    ],
)
def test_settings_refuse_an_applications_section_that_cannot_work(
    rig: Rig, applications: dict[str, Any], problem: str
) -> None:
    data = rig.sims.settings_data(rig.db_url)
    data["pageup"]["applications"] = applications

    with pytest.raises(ValidationError) as caught:
        Settings(**data)

    assert problem in str(caught.value)


def test_no_personal_data_or_secret_in_the_log_lines(
    rig: Rig, sims: Sims, captured_logs: io.StringIO
) -> None:
    sims.hris.refuse_echoing.add("app-800006")  # the refusal quotes every value sent
    rig.sim.entry(800003)["ApplicationInfo"]["Stage"] = "Offer"
    rig.run()
    rig.run()

    text = captured_logs.getvalue()
    assert "application_parked" in text and "application_delivered" in text
    for line in text.splitlines():
        json.loads(line)
    for applicant in rig.sim.applicants.values():
        for key in ("FirstName", "LastName", "Email", "Phone"):
            assert str(applicant[key]) not in text, key
    assert sims.pageup.client_secret not in text and str(sims.hris.api_key) not in text


@pytest.mark.parametrize("cause", ["credentials", "daily_limit"])
def test_pageup_refusing_us_halts_the_sources_applications_run(
    rig: Rig, sims: Sims, cause: str
) -> None:
    settings = rig.settings()
    if cause == "credentials":
        source = settings.sources["pageup"]
        wrong = source.model_copy(update={"client_secret": SecretStr("wrong")})
        settings = settings.model_copy(update={"sources": {"pageup": wrong}})
    else:
        sims.pageup.faults.rate_limit_every, sims.pageup.faults.retry_after = 1, None

    report = rig.run(settings)

    assert report.halted is not None and report.halted.startswith(
        "PageUp refused the applications of pageup"
    )
    assert report.created == 0 and sims.hris.calls["post"] == 0


def test_pageup_outages_are_retried_and_each_application_still_arrives_once(
    rig: Rig, sims: Sims
) -> None:
    sims.pageup.faults.error_rate = 0.25  # seeded: the same calls fail on every test run
    settings = rig.settings()
    runs = [rig.run(settings) for _ in range(6)]

    assert sum(r.created for r in runs) == COUNT
    assert sims.pageup.injected["503"] > 0
    ids = sims.hris.external_ids()
    assert len(ids) == COUNT and set(ids.values()) == {1}


def test_one_worker_at_a_time_runs_a_sources_applications(rig: Rig, sims: Sims) -> None:
    settings = rig.settings()

    async def two_workers() -> list[ApplicationRunReport]:
        async with application_syncs(settings) as one, application_syncs(settings) as other:
            return list(await asyncio.gather(one["pageup"].run(), other["pageup"].run()))

    reports = asyncio.run(two_workers())

    assert sorted(r.led_elsewhere for r in reports) == [False, True]
    assert sum(r.created for r in reports) == COUNT
    assert set(sims.hris.external_ids().values()) == {1}


def test_a_lease_left_by_a_dead_worker_is_taken_once_it_expires(rig: Rig, sims: Sims) -> None:
    engine = open_store(rig.settings())
    try:
        ledger = ApplicationLedger(engine)
        assert ledger.take_lease("pageup", "other-worker", 600)
        held = rig.run()
        posts_while_held = sims.hris.calls["post"]
        assert ledger.take_lease("pageup", "other-worker", -1)  # its lease ran out
        taken = rig.run()
    finally:
        engine.dispose()

    assert held.led_elsewhere and held.created == 0 and posts_while_held == 0
    assert not taken.led_elsewhere and taken.created == COUNT


TALENT_MAP = """
when: "application.ApplicationInfo.Stage == 'Interview'"
find: {path: "?externalId={payload.externalId}", id: "items[0].id", update: {path: "/{id}"}}
fields:
  externalId: {expr: "to_string(application.ApplicationInfo.PUReferenceID)", required: true}
  stage: application.ApplicationInfo.Stage
"""


def test_each_target_has_its_own_map_choice_and_fingerprint(
    rig: Rig, sims: Sims, tmp_path: Path
) -> None:
    talent = hris.HrisState(flavour="generic", required=("externalId",))
    (tmp_path / "talent.yaml").write_text(TALENT_MAP)
    with BackgroundServer(hris.build_app(talent)) as server:
        data = rig.settings().model_dump(mode="json", exclude_none=True)
        data["sources"]["pageup"]["client_secret"] = sims.pageup.client_secret
        data["targets"]["hris"]["auth"]["api_key"] = sims.hris.api_key  # dumped as ****
        data["sources"]["pageup"]["applications"]["targets"] = ["hris", "talent"]
        data["targets"]["talent"] = {
            **data["targets"]["hris"], "url": f"{server.url}/api/employees",
            "applications_mapping": str(tmp_path / "talent.yaml"),
        }  # fmt: skip
        settings = Settings(**data)
        interviewing = {
            str(e["ApplicationInfo"]["PUReferenceID"])
            for e in rig.sim.jobs[str(JOB)].applications
            if e["ApplicationInfo"]["Stage"] == "Interview"
        }
        moved = next(e for e in rig.sim.jobs[str(JOB)].applications
                     if e["ApplicationInfo"]["Stage"] != "Interview")  # fmt: skip

        first = rig.run(settings)
        moved["ApplicationInfo"]["Stage"] = "Interview"
        second = rig.run(settings)

    assert 0 < len(interviewing) < COUNT
    assert first.created == COUNT + len(interviewing)
    assert first.not_chosen == COUNT - len(interviewing)
    assert sorted(talent.external_ids()) == sorted(
        interviewing | {str(moved["ApplicationInfo"]["PUReferenceID"])}
    )
    # The move is an update for hris (its payload changed) and a first send for talent.
    assert (second.updated, second.created) == (1, 1)
    assert set(talent.external_ids().values()) == {1} and sims.hris.calls["put"] == 1


def test_a_target_refusing_our_credentials_is_not_tried_again_in_the_run(
    rig: Rig, sims: Sims
) -> None:
    sims.hris.api_key = "rotated"  # the target no longer takes ours

    report = rig.run()

    concurrency = rig.settings().sources["pageup"].applications.concurrency
    assert 0 < report.failed <= concurrency  # those already in flight when it first refused
    assert report.waiting == COUNT - report.failed
    assert sims.hris.calls["find"] <= concurrency
    states = rig.ledger()
    assert all(s.parked_at is None and s.next_attempt_at is not None for s in states.values())
