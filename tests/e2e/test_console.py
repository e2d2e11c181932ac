"""The console in a real browser (Debian's Chromium, driven by Playwright) against a real
``hirebridge run`` and the simulators: sign-in, an operator's retry and run now, a viewer's
limits, an admin's map preview, apply and rollback, CSRF, lockout; the auth-proxy mode from a
trusted and an untrusted peer."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api as playwright_api

from tests.conftest import REPO, Sims
from tests.e2e.a11y import axe_violations, h1_count, tab_walk, unlabelled_controls
from tests.e2e.console_rig import CHROMIUM, PASSWORDS, Served, seen_or_wait, served
from worker.simulators import ats
from worker.simulators.apna import make_leads
from worker.simulators.sample import make_offers
from worker.simulators.server import BackgroundServer

pytestmark = pytest.mark.e2e
PARKED = "900102"  # the sample offer without a tax file number: parked by the first run
SHOTS = os.environ.get("HIREBRIDGE_CONSOLE_SCREENSHOTS")  # a folder: also save screenshots


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    started = Sims(3, frozenset({1})).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def service(sims: Sims, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("console")
    with served(sims, folder, allow_map_apply=True, max_failed_logins=3) as found:
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def signed_in(browser: Any, service: Served, user: str) -> Any:
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.goto(f"{service.base}/console/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{service.base}/console/")
    return page


def personal_values(sims: Sims) -> list[str]:
    found = []
    for sample in sims.samples:
        applicant = sample.offer["Applicant"]
        found += [applicant["FirstName"], applicant["LastName"], applicant["Email"]]
    return [value for value in found if len(value) > 3]


def test_an_operator_retries_a_parked_offer_and_sees_it_processed_after_run_now(
    service: Served, browser: Any
) -> None:
    page = signed_in(browser, service, "otto")
    assert page.locator("#parked-count").inner_text() == "1"
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/console-overview.png", full_page=True)
    page.get_by_role("link", name="Offers").click()
    page.get_by_label("Parked").select_option("yes")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("table.offers tbody tr")
    assert row.count() == 1 and "taxFileNumber" in row.inner_text()
    page.get_by_role("link", name=PARKED).click()
    assert "required" in page.locator("#offer-reason").inner_text()
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/console-offer.png", full_page=True)

    # HR fixed the new-starter form in PageUp; the operator retries, then runs now.
    fixed = make_offers(3)[1]
    service.sims.pageup.load([fixed])
    page.get_by_label("Reason (optional)").fill("TFN added in PageUp")
    page.get_by_role("button", name="Retry").click()
    assert "re-queued" in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="Runs").click()
    page.get_by_role("button", name="Run now").click()
    assert "run requested" in page.get_by_role("status").inner_text()
    service.worker.wait_for("run_finished", succeeded=1)
    page.goto(f"{service.base}/console/offers/pageup/{PARKED}")
    assert page.locator("#offer-state").inner_text() == "processed"
    assert "retry otto TFN added in PageUp" in page.locator("table").last.inner_text().replace(
        "\t", " "
    )


def test_a_viewer_sees_no_action_buttons_and_a_forged_post_is_refused(
    service: Served, browser: Any
) -> None:
    page = signed_in(browser, service, "vera")
    html = [page.content()]
    for path in ("/console/offers", "/console/offers/pageup/900101", "/console/runs",
                 "/console/maps/hris", "/console/inbox"):  # fmt: skip
        page.goto(service.base + path)
        html.append(page.content())
        assert (
            page.get_by_role("button", name=re.compile("Retry|Skip|Mark|Run now|Apply")).count()
            == 0
        )
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    forged = page.request.post(f"{service.base}/console/offers/pageup/900101/retry",
                               form={"csrf": token, "reason": "forged"})  # fmt: skip
    assert forged.status == 403
    # A preview for a viewer: payload shape and non-personal fields, never personal values.
    page.goto(f"{service.base}/console/maps/hris")
    page.get_by_label("Offer id").first.fill("900101")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview-result").inner_text()
    assert '"firstName": "•••"' in preview and '"externalId": "900101"' in preview
    html.append(page.content())
    leaked = [value for value in personal_values(service.sims) if any(value in h for h in html)]
    assert leaked == []


def test_an_admin_previews_applies_a_broken_map_then_a_good_one_and_rolls_back(
    service: Served, browser: Any
) -> None:
    original = service.mapping.read_text()
    page = signed_in(browser, service, "ada")
    page.goto(f"{service.base}/console/maps/hris")
    assert page.locator("#map-valid").is_visible()
    page.get_by_label("Offer id").first.fill("900103")
    page.get_by_label("Reveal personal values (recorded)").check()
    page.get_by_role("button", name="Preview").click()
    assert '"firstName": "•••"' not in page.locator("#preview-result").inner_text()

    broken = original.replace("jobTitle: {expr: offer.PositionTitle", "jobTitle: {expr: nosuch(")
    page.get_by_label("Candidate map (paste)").fill(broken)
    page.get_by_role("button", name="Apply").click()
    assert "Not applied" in page.locator("#refused").inner_text()
    marked = page.locator("ol.code li.marked")
    assert marked.count() == 1 and "nosuch(" in marked.inner_text()
    assert service.mapping.read_text() == original

    good = original + "\n# changed from the console\n"
    page.get_by_label("Candidate map (paste)").fill(good)
    page.get_by_role("button", name="Apply").click()
    assert "Applied" in page.locator("#applied").inner_text()
    assert service.mapping.read_text() == good
    service.worker.wait_for("mapping_reloaded")

    page.goto(f"{service.base}/console/maps/hris")
    page.get_by_role("button", name="Roll back to it").click()
    assert "Applied" in page.locator("#applied").inner_text()
    assert service.mapping.read_text() == original
    service.worker.wait_for("mapping_reloaded")


def test_a_post_without_its_csrf_token_is_refused(service: Served, browser: Any) -> None:
    page = signed_in(browser, service, "otto")
    refused = page.request.post(f"{service.base}/console/runs/now", form={"source": "pageup"})
    assert refused.status == 403 and "CSRF" in refused.text()
    api = page.request.post(f"{service.base}/console/api/runs/now", data={})
    assert api.status == 403


def test_repeated_failed_logins_lock_out(service: Served, browser: Any) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{service.base}/console/login")
    for _ in range(3):
        page.get_by_label("User name").fill("vera")
        page.get_by_label("Password").fill("not her password")
        page.get_by_role("button", name="Sign in").click()
        assert "wrong user name or password" in page.locator("#login-error").inner_text()
    page.get_by_label("User name").fill("vera")
    page.get_by_label("Password").fill(PASSWORDS["vera"])
    page.get_by_role("button", name="Sign in").click()
    assert "too many failed sign-ins" in page.locator("#login-error").inner_text()


def test_the_auth_proxy_is_believed_from_a_trusted_peer_only(
    sims: Sims, tmp_path: Path, browser: Any
) -> None:
    proxy = {"group_roles": {"hr-ops": "operator"}}
    # 127.0.0.1 is the proxy; a client reaching the service from 127.0.0.2 is not.
    with served(sims, tmp_path, mode="proxy", proxy=proxy,
                service={"trusted_proxies": ["127.0.0.1/32"]}) as found:  # fmt: skip
        headers = {"X-Forwarded-User": "sam", "X-Forwarded-Groups": "staff,hr-ops"}
        context = browser.new_context(extra_http_headers=headers)
        page = context.new_page()
        page.goto(f"{found.base}/console/")
        assert "sam" in page.locator(".who").inner_text()
        assert page.get_by_role("link", name="Offers").is_visible()
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport) as client:
            untrusted = client.get(f"{found.base}/console/api/session", headers=headers)
        assert untrusted.status_code == 401


BAD_JOB = {"id": "P1", "title": "Engineer", "apply_url": "ftp://careers.example.com/1"}
GOOD_JOB = {"id": "P2", "title": "Nurse", "apply_url": "https://careers.example.com/2"}


@dataclass
class Ops:
    """A service with job postings into the ATS and Apna pushes into the HRIS's intake."""

    served: Served
    ats: ats.AtsState
    jobs: Path  # the job source's file


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    folder = tmp_path_factory.mktemp("ops")
    (folder / "jobs").mkdir()
    jobs = folder / "jobs" / "jobs.json"
    jobs.write_text(json.dumps([BAD_JOB, GOOD_JOB]))
    state = ats.AtsState()
    own = Sims(2, frozenset({1})).start()  # 900102 parks: no tax file number
    try:
        with BackgroundServer(ats.build_app(state)) as ats_server:
            intake = {"url": f"{own.hris_url}/api/intake/leads",
                      "auth": {"type": "api_key", "api_key": own.hris.api_key},
                      "mapping": str(REPO / "mappings" / "apna_leads.yaml")}  # fmt: skip
            sections = {
                "ats": {"enabled": True, "base_url": f"{ats_server.url}{ats.BASE}",
                        "api_key": "ats-sim-key", "source_name": "Main_ERP",
                        "mapping": str(REPO / "mappings" / "ats_jobs.yaml"),
                        "source": {"type": "directory", "directory": str(jobs.parent)},
                        "interval_seconds": 1},
                "inbound": {"poll_seconds": 0.2, "apna": {
                    "enabled": True, "auth": {"type": "bearer", "token": "t0k"},
                    "target": intake}},
                # A push whose delivery fails once is parked at once (for the retry below).
                "sync": {"max_attempts": 1},
            }  # fmt: skip
            with served(own, folder, sections) as found:
                yield Ops(found, state, jobs)
    finally:
        own.stop()


def test_an_operator_retries_a_parked_job_posting_and_sees_it_delivered(
    ops: Ops, browser: Any
) -> None:
    seen_or_wait(ops.served.worker, "job_parked", source_job_id="P1")
    page = signed_in(browser, ops.served, "otto")
    page.get_by_role("link", name="Jobs").click()
    failing = page.locator("table tbody tr")
    assert failing.count() == 1
    row = failing.first.inner_text()
    assert "P1" in row and "parked" in row and "application_url: not an http(s) URL" in row

    # The source's export is fixed; the operator retries, the next job run creates it.
    ops.jobs.write_text(json.dumps([{**BAD_JOB, "apply_url": "https://careers.example.com/1"},
                                    GOOD_JOB]))  # fmt: skip
    page.get_by_role("button", name="Retry the parked jobs").click()
    assert "1 parked job(s) due again" in page.get_by_role("status").inner_text()
    created = ops.served.worker.wait_for("job_created", source_job_id="P1")
    page.goto(f"{ops.served.base}/console/jobs")
    assert page.locator("table tbody tr").first.inner_text().strip() == "None."
    assert "open: 2" in page.locator("main").inner_text()
    assert created["ats_job_id"] in ops.ats.jobs


def test_an_operator_retries_a_parked_push_from_the_inbox_and_sees_it_delivered(
    ops: Ops, browser: Any
) -> None:
    hris = ops.served.sims.hris
    hris.faults.fail_next["intake"] = 100  # the HRIS's intake is down
    lead = make_leads(1, seed=5)[0]
    pushed = httpx.post(f"{ops.served.base}/inbound/apna", json=lead,
                        headers={"Authorization": "Bearer t0k"})  # fmt: skip
    assert pushed.status_code == 200
    parked = seen_or_wait(ops.served.worker, "push_delivery_parked")
    page = signed_in(browser, ops.served, "otto")
    page.get_by_role("link", name="Inbox").click()
    row = page.locator("table tbody tr").first.inner_text()
    assert "apna" in row and "parked" in row and "503" in row

    hris.faults.fail_next["intake"] = 0  # back up
    page.get_by_role("button", name=f"Retry #{parked['inbox_id']}").click()
    assert "is due again" in page.get_by_role("status").inner_text()
    ops.served.worker.wait_for("push_delivered", inbox_id=parked["inbox_id"])
    page.goto(f"{ops.served.base}/console/inbox")
    assert page.locator("table tbody tr").first.inner_text().strip() == "Everything was delivered."
    assert len(hris.collected["leads"]) == 1


# Each page (as an admin, who sees every form) and the actions the keyboard must reach on it.
A11Y_PAGES = {
    "/console/": ["Offers", "Download the bundle"],
    "/console/offers": ["Filter"],
    f"/console/offers/pageup/{PARKED}": ["Retry", "Skip", "Mark processed"],
    "/console/runs": ["Show", "Run now"],
    "/console/maps": ["hris"],
    "/console/maps/hris": ["Preview", "Check the candidate"],
    "/console/inbox": ["Show"],
    "/console/jobs": ["Retry the parked jobs", "Link"],
}


def test_every_page_is_accessible_and_its_actions_reachable_by_keyboard(
    ops: Ops, browser: Any
) -> None:
    seen_or_wait(ops.served.worker, "offer_parked")
    problems: dict[str, list[str]] = {}
    login = browser.new_context().new_page()
    login.goto(f"{ops.served.base}/console/login")
    page = signed_in(browser, ops.served, "ada")
    for path, actions in A11Y_PAGES.items():
        page.goto(ops.served.base + path)
        _check(path, page, actions, problems)
    _check("/console/login", login, ["Sign in"], problems)
    assert problems == {}


def _check(path: str, page: Any, actions: list[str], problems: dict[str, list[str]]) -> None:
    # The overview refreshes itself (the issue asks it to), which axe's meta-refresh rule
    # refuses outright; WCAG 2.2.1 allows it when the reader can turn it off: checked instead.
    waived = ("meta-refresh",) if path == "/console/" else ()
    found = axe_violations(page, waived)
    if waived and page.get_by_role("link", name="Stop refreshing").count() != 1:
        found.append("no way to stop the page refreshing itself")
    found += [f"no label: {control}" for control in unlabelled_controls(page)]
    if h1_count(page) != 1:
        found.append(f"{h1_count(page)} h1 elements, not one")
    if page.locator("html").get_attribute("lang") != "en":
        found.append("html lang is not 'en'")
    walk = tab_walk(page)
    names = [f["name"] for f in walk]
    found += [f"Tab never reaches {action!r}" for action in actions if action not in names]
    found += [f"Tab focuses an invisible {f['tag']} {f['name']!r}" for f in walk
              if not f["visible"]]  # fmt: skip
    if walk and walk[0]["name"] != "Skip to content":
        found.append(f"the first Tab stop is {walk[0]['name']!r}, not the skip link")
    if found:
        problems[path] = found
