"""``hirebridge check`` compares the map's lookup tables with the account's live lists."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Sims
from worker.mapping.loader import load_field_map
from worker.service.account import account_problems
from worker.service.check import run_checks
from worker.simulators.hris.bamboohr import DEFAULT_LISTS as BAMBOO_LISTS
from worker.simulators.hris.hibob import DEFAULT_LISTS as BOB_LISTS

DB = "sqlite:///unused.sqlite"


def problems(sims: Sims) -> list[str]:
    settings = sims.settings(DB)
    field_map = load_field_map(settings.targets["hris"].mapping)
    return asyncio.run(account_problems(settings, "hris", field_map))


@pytest.mark.parametrize("sims", [{"target": "bamboohr"}, {"target": "hibob"}], indirect=True)
def test_the_shipped_maps_match_the_simulated_accounts(sims: Sims) -> None:
    checks = {c.name: c for c in asyncio.run(run_checks(sims.settings(DB)))}

    assert checks["account hris"].ok, checks["account hris"].detail
    assert "match the account" in checks["account hris"].detail


@pytest.mark.parametrize("sims", [{"target": "bamboohr"}], indirect=True)
def test_a_bamboohr_value_the_account_lacks_is_named(sims: Sims) -> None:
    lists = {alias: list(options) for alias, options in BAMBOO_LISTS.items()}
    lists["department"].remove("Retail")
    lists["payPer"] = ["Year", "Month"]
    sims.hris.lists = lists

    found = problems(sims)

    assert found == [
        "lookup 'departments': 'Retail' is not in the account's list (GET meta/lists)",
        "lookup 'pay_periods': 'Hour' is not in the account's list (GET meta/lists)",
    ]
    assert sims.hris.calls["meta_lists"] == 1 and sims.hris.calls["post"] == 0


@pytest.mark.parametrize("sims", [{"target": "hibob"}], indirect=True)
def test_hibob_unknown_list_ids_and_a_missing_custom_field_are_named(sims: Sims) -> None:
    sims.hris.lists = {**BOB_LISTS, "site": [(2451001, "Sydney Office")]}
    sims.hris.custom_fields = []

    checks = {c.name: c for c in asyncio.run(run_checks(sims.settings(DB)))}

    account = checks["account hris"]
    assert not account.ok
    for site_id in ("2451002", "2451003", "2451004"):
        assert f"lookup 'sites': '{site_id}' is not in the account's list" in account.detail
    assert "no custom field work.customColumns.pageupOfferId" in account.detail
    assert "(GET company/people/fields)" in account.detail


@pytest.mark.parametrize("sims", [{"target": "bamboohr"}], indirect=True)
def test_refused_credentials_fail_the_check(sims: Sims) -> None:
    sims.hris.api_key = "another-key"

    checks = {c.name: c for c in asyncio.run(run_checks(sims.settings(DB)))}

    assert not checks["account hris"].ok
    assert "HTTP 401" in checks["account hris"].detail


def test_maps_without_a_check_section_add_no_check(sims: Sims) -> None:
    names = [c.name for c in asyncio.run(run_checks(sims.settings(DB)))]
    assert "hris account lists" not in names


@pytest.mark.parametrize(
    "sims",
    [{"target": t} for t in ("bamboohr", "hibob", "xero", "successfactors", "employmenthero")],
    indirect=True,
    ids=lambda options: options["target"],
)
def test_check_passes_against_each_vendor_simulator(sims: Sims) -> None:
    failed = [c for c in asyncio.run(run_checks(sims.settings(DB))) if not c.ok]
    assert failed == []
