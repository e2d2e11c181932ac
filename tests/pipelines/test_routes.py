"""Offers routed to several targets: each target once, the mark only after all of them, a
failing target retried alone, the choice of targets recorded, a source or target failing on
its own."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import RoutedSims
from worker.pipelines.source_run import RunReport
from worker.runtime import offer_worker, open_store
from worker.settings import Settings
from worker.store.interventions import Interventions, OfferKey
from worker.store.ledger import Ledger


def run_all(settings: Settings) -> dict[str, RunReport]:
    async def go() -> list[RunReport]:
        async with offer_worker(settings) as worker:
            return await worker.run_once()

    return {report.source: report for report in asyncio.run(go())}


def ledger(settings: Settings) -> Ledger:
    return Ledger(open_store(settings))


def sent_to(routed: RoutedSims, offer_id: str) -> list[str]:
    return sorted(name for name, sim in routed.targets.items() if sim.external_ids()[offer_id])


def expected(routed: RoutedSims, tenant: str, offer_id: str) -> list[str]:
    country = routed.country(tenant, offer_id)
    return sorted(["hris", "payroll_au" if country == "Australia" else "payroll_nz"])


def every_offer(routed: RoutedSims) -> list[tuple[str, str]]:
    return [(tenant, str(s.offer_id)) for tenant, samples in routed.samples.items()
            for s in samples]  # fmt: skip


def test_each_offer_reaches_its_targets_once_and_is_marked_after_all_of_them(
    routed: RoutedSims, db_url: str
) -> None:
    marked_too_early: list[str] = []
    for tenant, state in routed.tenants.items():

        def check(offer_id: str, tenant: str = tenant) -> None:
            if sent_to(routed, offer_id) != expected(routed, tenant, offer_id):
                marked_too_early.append(offer_id)

        state.on_mark = check

    reports = run_all(routed.settings(db_url))

    assert {s: (r.succeeded, r.failed) for s, r in reports.items()} == {
        "au": (4, 0),
        "group": (8, 0),
    }
    for tenant, offer_id in every_offer(routed):
        assert sent_to(routed, offer_id) == expected(routed, tenant, offer_id), offer_id
        assert routed.tenants[tenant].processed[offer_id] == 1
    assert marked_too_early == []
    for sim in routed.targets.values():
        assert set(sim.external_ids().values()) == {1}, "no target got an offer twice"


def test_a_failing_target_retries_alone_and_the_offer_waits_for_it(
    routed: RoutedSims, db_url: str
) -> None:
    routed.targets["payroll_au"].faults.error_rate = 1.0
    fast = {"retry_backoff_initial_seconds": 0, "circuit_breaker_failures": 100}
    settings = routed.settings(db_url, sync=fast)
    first = run_all(settings)

    australians = [o for t, o in every_offer(routed) if routed.country(t, o) == "Australia"]
    assert first["au"].failed == 4 and first["group"].failed == len(australians) - 4
    assert routed.targets["hris"].external_ids().total() == 12, "the HRIS got every offer"
    for _tenant, offer_id in every_offer(routed):
        marked = (
            routed.tenants["au"].processed[offer_id] + routed.tenants["group"].processed[offer_id]
        )
        assert marked == (0 if offer_id in australians else 1), offer_id
    hris_posts = routed.targets["hris"].calls["post"]

    routed.targets["payroll_au"].faults.error_rate = 0.0
    second = run_all(settings)

    assert second["au"].succeeded == 4
    assert routed.targets["hris"].calls["post"] == hris_posts, "the HRIS was not sent them again"
    assert routed.targets["payroll_au"].external_ids().total() == len(australians)
    for tenant, offer_id in every_offer(routed):
        assert routed.tenants[tenant].processed[offer_id] == 1


def test_the_targets_chosen_are_kept_until_an_admin_reroutes(
    routed: RoutedSims, db_url: str
) -> None:
    data = routed.settings_data(db_url, sync={"retry_backoff_initial_seconds": 0})
    routed.targets["payroll_nz"].faults.error_rate = 1.0
    run_all(Settings(**data))
    kiwi = next(o for t, o in every_offer(routed) if routed.country(t, o) == "New Zealand")
    state = ledger(Settings(**data)).get("group", kiwi)
    assert state is not None and [t.target for t in state.targets] == ["hris", "payroll_nz"]

    # New Zealand pay is outsourced: the route to payroll_nz, and the target, are removed.
    data["routes"] = [r for r in data["routes"] if r["target"] != "payroll_nz"]
    data["targets"].pop("payroll_nz")
    routed.targets["payroll_nz"].faults.error_rate = 0.0
    changed = Settings(**data)
    run_all(changed)
    assert routed.tenants["group"].processed[kiwi] == 0, "its chosen target has not accepted it"
    waiting = ledger(changed).get("group", kiwi)
    assert waiting is not None and "no longer configured" in (waiting.last_error or "")

    admin = Interventions(ledger(changed))
    assert admin.retry([OfferKey("group", kiwi)], actor="ops", reason="NZ pay outsourced",
                       reroute=True)  # fmt: skip
    run_all(changed)
    assert sent_to(routed, kiwi) == ["hris"]
    assert routed.targets["hris"].external_ids()[kiwi] == 1, "the HRIS kept its one copy"
    assert routed.tenants["group"].processed[kiwi] == 1


def test_a_target_refusing_us_rests_while_the_others_go_on(routed: RoutedSims, db_url: str) -> None:
    data: dict[str, Any] = routed.settings_data(db_url)
    data["targets"]["payroll_nz"]["auth"]["api_key"] = "wrong"
    reports = run_all(Settings(**data))

    assert reports["au"].succeeded == 4, "au routes no offer to payroll_nz"
    kiwis = [o for t, o in every_offer(routed) if routed.country(t, o) == "New Zealand"]
    assert reports["group"].succeeded == 8 - len(kiwis)
    assert routed.targets["payroll_nz"].external_ids().total() == 0
    assert all(routed.targets["hris"].external_ids()[o] == 1 for o in kiwis)
    assert all(routed.tenants["group"].processed[o] == 0 for o in kiwis)
    assert routed.targets["payroll_nz"].calls["post"] <= 3, "it rests after refusing us"


def test_a_source_whose_token_is_refused_halts_alone(routed: RoutedSims, db_url: str) -> None:
    data: dict[str, Any] = routed.settings_data(db_url)
    data["sources"]["au"]["client_secret"] = "wrong"
    reports = run_all(Settings(**data))

    assert reports["au"].halted == "pageup token failed: HTTP 401: invalid_client"
    assert reports["group"].ok and reports["group"].succeeded == 8
    assert all(routed.tenants["au"].processed[str(s.offer_id)] == 0
               for s in routed.samples["au"])  # fmt: skip


def test_an_offer_no_route_takes_parks_naming_what_was_looked_at_and_the_others_go_on(
    routed: RoutedSims, db_url: str
) -> None:
    data: dict[str, Any] = routed.settings_data(db_url)
    # The group's HRIS takes Australians and New Zealanders only; one hire is in Fiji.
    for route in data["routes"]:
        if route["source"] == "group" and route["target"] == "hris":
            route["when"] = "contains(['Australia', 'New Zealand'], offer.Location.Country)"
    fijian = routed.samples["group"][0]
    fijian.offer["Location"]["Country"] = "Fiji"
    fiji = str(fijian.offer_id)

    reports = run_all(Settings(**data))

    state = ledger(Settings(**data)).get("group", fiji)
    assert state is not None
    assert state.stage == "route" and state.parked_at is not None, state
    reason = state.last_error or ""
    assert reason.startswith("no route:"), reason
    assert "offer.Location.Country" in reason and "Fiji" in reason, reason
    assert state.targets == (), "no target was chosen"
    assert sent_to(routed, fiji) == [], "posted nowhere"
    assert routed.tenants["group"].processed[fiji] == 0, "not marked"
    assert reports["group"].parked == 1 and reports["group"].succeeded == 7
    assert reports["au"].succeeded == 4
    for tenant, offer_id in every_offer(routed):
        if offer_id != fiji:
            assert sent_to(routed, offer_id) == expected(routed, tenant, offer_id), offer_id
            assert routed.tenants[tenant].processed[offer_id] == 1


def test_a_rate_limit_without_retry_after_halts_that_tenant_only(
    routed: RoutedSims, db_url: str
) -> None:
    au = routed.tenants["au"]
    au.faults.retry_after = None

    def rate_limited_from_now(_offer_id: str) -> None:
        au.faults.rate_limit_every = 1  # every later call of this tenant: 429, no Retry-After

    au.on_fetch = rate_limited_from_now
    reports = run_all(routed.settings(db_url, sync={"retry_backoff_initial_seconds": 0}))

    assert reports["au"].outcome == "halted" and "HTTP 429" in (reports["au"].halted or "")
    assert au.injected["429"] > 0
    assert sum(au.processed.values()) == 0
    assert reports["group"].ok and reports["group"].succeeded == 8
    assert all(routed.tenants["group"].processed[str(s.offer_id)] == 1
               for s in routed.samples["group"])  # fmt: skip


def test_a_target_failing_past_the_breaker_rests_while_the_other_targets_go_on(
    routed: RoutedSims, db_url: str
) -> None:
    routed.targets["payroll_nz"].faults.error_rate = 1.0  # every post: 503
    settings = routed.settings(db_url, sync={
        "circuit_breaker_failures": 2, "retry_backoff_initial_seconds": 0,
        "concurrency": 1,  # one offer at a time: none is in flight as the breaker opens
    })  # fmt: skip
    reports = run_all(settings)

    kiwis = [o for t, o in every_offer(routed) if routed.country(t, o) == "New Zealand"]
    assert len(kiwis) > 2, "more New Zealand offers than the breaker lets through"
    attempts = settings.targets["payroll_nz"].retry.attempts
    posts = routed.targets["payroll_nz"].calls["post"]
    assert posts == 2 * attempts, f"it rests after 2 offers failed ({posts} posts)"
    assert routed.targets["payroll_nz"].external_ids().total() == 0
    assert all(routed.targets["hris"].external_ids()[o] == 1 for o in kiwis)
    assert all(routed.tenants["group"].processed[o] == 0 for o in kiwis)
    australians = [(t, o) for t, o in every_offer(routed) if o not in kiwis]
    for tenant, offer_id in australians:
        assert sent_to(routed, offer_id) == ["hris", "payroll_au"], offer_id
        assert routed.tenants[tenant].processed[offer_id] == 1
    assert reports["au"].ok and reports["au"].succeeded == 4
    assert reports["group"].succeeded == 8 - len(kiwis)
