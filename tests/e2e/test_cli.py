"""The ``hirebridge`` command as users run it: a subprocess against the simulators."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, RoutedSims, Sims
from tests.pipelines.test_steps import STEPS_MAP
from worker.simulators.apna import make_leads

pytestmark = pytest.mark.e2e
MISSING_TFN = {"offers": 6, "missing_tfn": frozenset({1})}


def hirebridge(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120, check=False, env=env,
    )  # fmt: skip


def bare_environment(**settings: str) -> dict[str, str]:
    """The test's environment without any HIREBRIDGE_ setting, plus ``settings``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("HIREBRIDGE_")}
    return {**kept, **settings}


def write_config(sims: Sims, folder: Path, db_url: str) -> Path:
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url)))
    return config


@pytest.mark.parametrize("sims", [MISSING_TFN], indirect=True)
def test_sync_once_then_status_shows_the_failure_and_its_reason(
    sims: Sims, tmp_path: Path, db_url: str
) -> None:
    config = write_config(sims, tmp_path, db_url)

    sync = hirebridge("--config", str(config), "sync", "--once", cwd=tmp_path)

    assert sync.returncode == 1, sync.stderr
    assert "listed 6, processed 5, failed 1" in sync.stdout
    status = hirebridge("--config", str(config), "status", cwd=tmp_path)
    assert status.returncode == 0
    assert re.search(r"processed\s+5\n", status.stdout) and re.search(
        r"failed\s+1\n", status.stdout
    )
    assert "900102" in status.stdout and "'tax.taxFileNumber': required" in status.stdout


def test_sync_once_exits_zero_when_every_offer_succeeds(
    sims: Sims, tmp_path: Path, db_url: str
) -> None:
    config = write_config(sims, tmp_path, db_url)
    sync = hirebridge("--config", str(config), "sync", "--once", cwd=tmp_path)
    assert sync.returncode == 0, sync.stderr
    assert len(sims.hris.records) == 12


def test_preview_prints_the_payload_and_writes_nothing(sims: Sims, tmp_path: Path) -> None:
    database = tmp_path / "state.sqlite"
    config = write_config(sims, tmp_path, f"sqlite:///{database}")

    preview = hirebridge("--config", str(config), "preview", "--offer", "900103", cwd=tmp_path)

    assert preview.returncode == 0, preview.stderr
    payload = json.loads(preview.stdout)
    assert payload["externalId"] == "900103" and payload["tax"]["taxFileNumber"]
    assert not database.exists()
    assert sims.hris.calls["post"] == 0 and sum(sims.pageup.processed.values()) == 0


def test_preview_from_a_saved_document(tmp_path: Path, sims: Sims) -> None:
    config = write_config(sims, tmp_path, "sqlite:///unused.sqlite")
    sample = sims.samples[0]
    document = tmp_path / "doc.json"
    document.write_text(json.dumps({"offer": sample.offer, "onboarding": {"Answers": []}}))
    preview = hirebridge("--config", str(config), "preview", "--input", str(document), cwd=tmp_path)
    assert preview.returncode == 1
    assert "'tax.taxFileNumber': required" in preview.stderr


def test_preview_of_a_multi_step_map_shows_each_request(tmp_path: Path, sims: Sims) -> None:
    config = write_config(sims, tmp_path, "sqlite:///unused.sqlite")
    data = yaml.safe_load(config.read_text())
    data["hris"].update(url="https://payroll.example.com/api", mapping=str(STEPS_MAP))
    config.write_text(yaml.safe_dump(data))
    document = REPO / "mappings" / "example_payroll_steps.tests" / "typical.input.json"

    result = hirebridge("--config", str(config), "preview", "--input", str(document), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("# step")]
    assert headers == [
        "# step employee: POST https://payroll.example.com/api/employees"
        "  (or updates the record its look-up finds)",
        "# step bank_account: POST https://payroll.example.com/api/employees/<employee.id>"
        "/bank-accounts",
        "# step tax_declaration: POST https://payroll.example.com/api/employees/<employee.id>"
        "/tax-declaration",
    ]
    assert '"employeeId": "<employee.id>"' in result.stdout


def test_validate_mappings_lists_every_problem_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields:\n  a: nosuch(x)\n  b: {expr: 'x.['}\n")
    good = REPO / "mappings" / "example_hris.yaml"

    result = hirebridge("validate-mappings", str(good), str(bad), cwd=tmp_path)

    assert result.returncode == 2
    assert f"ok  {good}" in result.stdout
    assert f"{bad}:2:3: field 'a': unknown function nosuch()" in result.stderr
    assert f"{bad}:3:7: field 'b': bad expression" in result.stderr
    assert hirebridge("validate-mappings", str(good), cwd=tmp_path).returncode == 0


def test_a_key_given_twice_is_refused_by_every_command_that_reads_the_file(
    sims: Sims, tmp_path: Path
) -> None:
    twice = tmp_path / "twice.yaml"
    twice.write_text("fields:\n  email: offer.Email\n  name: offer.Name\n  email: offer.X\n")
    (tmp_path / "twice.tests").mkdir()
    both = f"{twice}:4:3: duplicate key 'fields.email', first given at {twice}:2:3"
    data = sims.settings_data(f"sqlite:///{tmp_path / 's.sqlite'}")
    data["hris"]["mapping"] = str(twice)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    doubled = tmp_path / "doubled.yaml"  # its `sync` section is given twice
    doubled.write_text(yaml.safe_dump(data) + "sync: {concurrency: 2}\n")

    validate = hirebridge("validate-mappings", str(twice), cwd=tmp_path)
    tested = hirebridge("mappings", "test", str(twice), cwd=tmp_path)
    started = hirebridge("--config", str(config), "sync", "--once", cwd=tmp_path)
    bad_config = hirebridge("--config", str(doubled), "sync", "--once", cwd=tmp_path)

    for result in (validate, tested, started):
        assert result.returncode == 2 and both in result.stderr, result.stderr
    assert bad_config.returncode == 2
    assert f"duplicate key 'sync', first given at {doubled}:" in bad_config.stderr
    assert sims.pageup.calls.total() == 0


def test_a_missing_config_file_is_named_and_the_environment_alone_can_configure(
    tmp_path: Path,
) -> None:
    named = hirebridge("--config", "missing.yaml", "status", cwd=tmp_path, env=bare_environment())
    from_env = hirebridge(
        "status", cwd=tmp_path, env=bare_environment(HIREBRIDGE_CONFIG=str(tmp_path / "gone.yaml"))
    )
    nothing = hirebridge("status", cwd=tmp_path, env=bare_environment())
    env_only = hirebridge("status", cwd=tmp_path, env=bare_environment(
        HIREBRIDGE_PAGEUP__TENANT_ID="218", HIREBRIDGE_PAGEUP__CLIENT_ID="acme",
        HIREBRIDGE_PAGEUP__CLIENT_SECRET="s", HIREBRIDGE_HRIS__URL="https://hris.example/api",
        HIREBRIDGE_DATABASE__URL=f"sqlite:///{tmp_path / 'state.sqlite'}",
    ))  # fmt: skip

    assert named.returncode == 2 and named.stderr == (
        "configuration problems:\n"
        f"  - missing.yaml (in {tmp_path}): config file not found (named by --config)\n"
    )
    assert from_env.returncode == 2
    assert f"{tmp_path / 'gone.yaml'}: config file not found (named by $HIREBRIDGE_CONFIG)" in (
        from_env.stderr
    )
    assert nothing.returncode == 2 and "Field required" not in nothing.stderr
    assert f"no config file: config.yaml (in {tmp_path}) does not exist" in nothing.stderr
    assert f"cp {REPO / 'config.example.yaml'} config.yaml" in nothing.stderr
    assert env_only.returncode == 0, env_only.stderr
    assert re.search(r"pending\s+0\n", env_only.stdout)


def test_bad_settings_refuse_to_start_listing_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("pageup: {tenant_id: '218'}\nhris: {}\nsync: {concurrency: -1}\n")
    result = hirebridge("--config", str(config), "sync", "--once", cwd=tmp_path)
    assert result.returncode == 2
    for problem in ("pageup.client_id: Field required", "pageup.client_secret: Field required",
                    "hris.url: Field required", "sync.concurrency"):  # fmt: skip
        assert problem in result.stderr


def test_sync_with_a_broken_field_map_refuses_to_start(sims: Sims, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("fields:\n  a: nosuch(x)\n  b: {required: yes}\n")
    data = sims.settings_data(f"sqlite:///{tmp_path / 's.sqlite'}")
    data["hris"]["mapping"] = str(broken)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    result = hirebridge("--config", str(config), "sync", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{broken}:2:3: field 'a': unknown function nosuch()" in result.stderr
    assert f"{broken}:3:3: field 'b': give exactly one of 'expr' or 'const'" in result.stderr
    assert sims.pageup.calls.total() == 0


def test_check_reports_each_part_and_fails_on_refused_credentials(
    sims: Sims, tmp_path: Path
) -> None:
    config = write_config(sims, tmp_path, f"sqlite:///{tmp_path / 's.sqlite'}")
    good = hirebridge("--config", str(config), "check", cwd=tmp_path)
    assert good.returncode == 0, good.stdout
    for name in ("settings", "map hris", "database", "source pageup", "target hris"):
        assert re.search(rf"^ok\s+{name}\s", good.stdout, re.MULTILINE), name
    data = sims.settings_data(f"sqlite:///{tmp_path / 's.sqlite'}")
    data["pageup"]["client_secret"] = "wrong"
    config.write_text(yaml.safe_dump(data))
    bad = hirebridge("--config", str(config), "check", cwd=tmp_path)
    assert bad.returncode == 1
    assert re.search(r"^FAIL\s+source pageup\s+HTTP 401: invalid_client", bad.stdout,
                     re.MULTILINE)  # fmt: skip
    assert sims.hris.calls["post"] == 0 and sum(sims.pageup.processed.values()) == 0


def test_check_covers_the_ats_health_and_the_inbound_maps(sims: Sims, tmp_path: Path) -> None:
    from worker.simulators import ats
    from worker.simulators.server import BackgroundServer

    state = ats.AtsState()
    (tmp_path / "jobs").mkdir()
    with BackgroundServer(ats.build_app(state)) as server:
        data = sims.settings_data(f"sqlite:///{tmp_path / 's.sqlite'}")
        data["ats"] = {"enabled": True, "base_url": f"{server.url}{ats.BASE}",
                       "api_key": "ats-sim-key", "source_name": "Main_ERP",
                       "mapping": str(REPO / "mappings" / "ats_jobs.yaml"),
                       "source": {"directory": str(tmp_path / "jobs")}}  # fmt: skip
        target = {"url": "https://ats.example.com/x",
                  "mapping": str(REPO / "mappings" / "apna_leads.yaml")}  # fmt: skip
        data["inbound"] = {"apna": {"enabled": True, "auth": {"type": "bearer", "token": "t"},
                                    "target": target}}  # fmt: skip
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        good = hirebridge("--config", str(config), "check", cwd=tmp_path)
        state.healthy = False
        bad = hirebridge("--config", str(config), "check", cwd=tmp_path)
    assert good.returncode == 0, good.stdout
    for name in ("inbound maps", "ats job map", "ats health"):
        assert re.search(rf"^ok\s+{name}\s", good.stdout, re.MULTILINE), name
    assert bad.returncode == 1 and re.search(r"^FAIL\s+ats health", bad.stdout, re.MULTILINE)


def test_mappings_test_passes_the_shipped_cases_and_diffs_a_broken_one(tmp_path: Path) -> None:
    shipped = hirebridge("mappings", "test", cwd=REPO)
    assert shipped.returncode == 0, shipped.stdout
    assert "ok    example_hris/typical" in shipped.stdout
    assert "ok    example_hris/missing-tax-file-number" in shipped.stdout

    changed = tmp_path / "example_hris.yaml"
    text = (REPO / "mappings" / "example_hris.yaml").read_text()
    changed.write_text(
        text.replace("costCentre: offer.CostCentre.Code", "costCentre: offer.CostCentre.Name")
    )
    cases = tmp_path / "example_hris.tests"
    cases.mkdir()
    for case in (REPO / "mappings" / "example_hris.tests").iterdir():
        (cases / case.name).write_text(case.read_text())
    broken = hirebridge("mappings", "test", str(changed), cwd=tmp_path)
    assert broken.returncode == 1
    assert "FAIL  example_hris/typical" in broken.stdout
    assert '-  "costCentre": "CC-115",' in broken.stdout
    assert '+  "costCentre": "Retail",' in broken.stdout
    assert "3 passed, 1 failed" in broken.stdout


def test_preview_diff_shows_what_a_map_change_does(sims: Sims, tmp_path: Path) -> None:
    config = write_config(sims, tmp_path, f"sqlite:///{tmp_path / 's.sqlite'}")
    other = tmp_path / "other.yaml"
    text = (REPO / "mappings" / "example_hris.yaml").read_text()
    other.write_text(text.replace("source: {const: pageup}", "source: {const: pageup-v2}"))
    result = hirebridge(
        "--config", str(config), "preview", "--offer", "900101", "--diff", str(other), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert '-  "source": "pageup"' in result.stdout and '+  "source": "pageup-v2"' in result.stdout
    assert sims.hris.calls["post"] == 0


DEMO_OUTCOMES = {
    "steps": "HRIS records created:         11",
    "bamboohr": "HRIS records created:         12",
    # the signed contract and the offer letter of each employee, each once
    "bamboohr-files": "HRIS files: 24, duplicate files: 0",
    "hibob": "HRIS records created:         12",
    "xero": "HRIS records created:         12",
    "successfactors": "SuccessFactors records upserted: PerPerson 12, EmpEmployment 12, EmpJob 12, "
    "PerPersonal 12, PerEmail 12, PerPhone 12",
    "employmenthero": "offer 900105: parked at map: field 'taxFileNumber': required",
}


@pytest.mark.parametrize("target", [t for t in DEMO_OUTCOMES if not t.endswith("-files")])
def test_demo_targets_each_shipped_map(tmp_path: Path, target: str) -> None:
    result = hirebridge("demo", "--target", target, "--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HRIS duplicate employees:     0" in result.stdout
    assert DEMO_OUTCOMES[target] in result.stdout
    if f"{target}-files" in DEMO_OUTCOMES:
        assert DEMO_OUTCOMES[f"{target}-files"] in result.stdout
        assert "HRIS files expected: 24" in result.stdout
    assert "demo OK" in result.stdout


def test_inbound_demo_receives_stores_and_delivers_without_pii_in_the_log(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "demo"
    result = hirebridge("demo", "--inbound", "--dir", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "delivered to the target:   8 leads, 3 assessments" in result.stdout
    assert "duplicates at the target:  0" in result.stdout and "demo OK" in result.stdout
    log = (folder / "hirebridge.log").read_text()
    assert '"push_delivered"' in log and '"lead_refused"' in log
    for lead in make_leads(8):
        for value in (lead["full_name"], lead["contact_info"]["email"],
                      lead["contact_info"]["phone_number"]):  # fmt: skip
            assert value not in log
    inbox = hirebridge("--config", str(folder / "config.yaml"), "inbox", cwd=tmp_path)
    assert "apna   delivered       8" in inbox.stdout and "pop    delivered       3" in inbox.stdout


def test_pop_config_prints_a_config_that_its_check_accepts(tmp_path: Path, sims: Sims) -> None:
    config = write_config(sims, tmp_path, "sqlite:///unused.sqlite")
    data = yaml.safe_load(config.read_text())
    target = {
        "url": "https://ats.example.com/api",
        "mapping": str(REPO / "mappings" / "pop_assessments.yaml"),
    }
    data["inbound"] = {"pop": {"enabled": True, "auth": "u:secret-pop-auth", "target": target}}
    config.write_text(yaml.safe_dump(data))

    printed = hirebridge("--config", str(config), "pop-config", "--show-secret", cwd=tmp_path)
    hidden = hirebridge("--config", str(config), "pop-config", cwd=tmp_path)
    checked = hirebridge("--config", str(config), "pop-config", "--check", printed.stdout.strip(),
                         cwd=tmp_path)  # fmt: skip
    wrong = hirebridge("--config", str(config), "pop-config", "--check", "ver|1|url|x",
                       cwd=tmp_path)  # fmt: skip

    assert "auth|u:secret-pop-auth" in printed.stdout and "secret-pop-auth" not in hidden.stdout
    assert checked.returncode == 0 and "ok: this config notifies this deployment" in checked.stdout
    assert wrong.returncode == 1 and "http_err: missing" in wrong.stdout


def test_jobs_demo_and_the_jobs_commands(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = hirebridge("demo", "--jobs", "--dir", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "third run  (one changed, one refused, one removed): created 0, updated 1" in (
        result.stdout
    )
    config = str(folder / "config.yaml")
    status = hirebridge("--config", config, "jobs", "status", cwd=tmp_path)
    assert "POS-1002 (ACME-2026-0003) parked: field 'job_type': required" in status.stdout
    linked = hirebridge("--config", config, "jobs", "link", "POS-9", "ACME-2026-0042", cwd=tmp_path)
    assert linked.returncode == 0 and "POS-9 is now ATS job ACME-2026-0042" in linked.stdout
    retried = hirebridge("--config", config, "jobs", "retry", "--all-parked", cwd=tmp_path)
    assert retried.returncode == 0 and "1 parked job(s) due again" in retried.stdout


def test_demo_runs_against_the_simulators(tmp_path: Path) -> None:
    result = hirebridge("demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HRIS duplicate employees:     0" in result.stdout
    assert "demo OK" in result.stdout


def test_routes_demo_then_the_commands_scoped_by_source_and_target(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = hirebridge("demo", "--routes", "--dir", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo OK" in result.stdout
    rows = re.findall(r"^(au|group)\s+(\d+)\s+(Australia|New Zealand)\s+(\S+), (\S+)\s+(\d+)$",
                      result.stdout, re.MULTILINE)  # fmt: skip
    assert len(rows) == 12
    for _tenant, _offer, country, payroll, other, marked in rows:
        assert (payroll, other, marked) == (
            "payroll_au" if country == "Australia" else "payroll_nz",
            "hris",
            "1",
        )
    kiwis = sum(country == "New Zealand" for _t, _o, country, *_ in rows)
    config = str(folder / "config.yaml")
    status = hirebridge("--config", config, "status", "--source", "group", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "offers by state (source group)" in status.stdout
    assert re.search(r"^  processed\s+8$", status.stdout, re.MULTILINE), status.stdout
    per_target = hirebridge("--config", config, "status", "--target", "payroll_nz", cwd=tmp_path)
    assert re.search(rf"^  payroll_nz\s+posted {kiwis}$", per_target.stdout, re.MULTILINE), (
        per_target.stdout
    )
    unknown = hirebridge("--config", config, "parked", "--source", "nowhere", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown source 'nowhere'" in unknown.stderr
    preview = hirebridge("--config", config, "preview", "--source", "group", "--offer", "910101",
                         cwd=tmp_path)  # fmt: skip
    assert preview.returncode == 1  # the simulators are gone with the demo: fetch fails cleanly
    assert "offer 910101:" in preview.stderr


def _json_documents(text: str) -> list[object]:
    """The JSON documents printed one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(text, at)) < len(text):
        document, at = decoder.raw_decode(text, at)
        found.append(document)
    return found


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def test_commands_with_several_sources_and_targets(routed: RoutedSims, tmp_path: Path) -> None:
    """preview shows the routes and a payload per target; sync, retry (--reroute, --target) and
    skip act on the source and target named, and on nothing else."""
    database = f"sqlite:///{tmp_path / 'state.sqlite'}"
    data = routed.settings_data(database, sync={"retry_backoff_initial_seconds": 0,
                                                "max_attempts": 1,
                                                "circuit_breaker_failures": 100})  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    cfg = ("--config", str(config))
    kiwis = [str(s.offer_id) for s in routed.samples["group"]
             if routed.country("group", str(s.offer_id)) == "New Zealand"]  # fmt: skip
    assert len(kiwis) >= 3

    preview = hirebridge(*cfg, "preview", "--source", "group", "--offer", kiwis[0], cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert re.search(r"^# routes of group: payroll_nz, hris  \(conditions looked at "
                     r"offer\.Location\.Country = \"New Zealand\"\)$", preview.stderr,
                     re.MULTILINE), preview.stderr  # fmt: skip
    shown = re.findall(r"^# target (\S+): ", preview.stderr, re.MULTILINE)
    assert shown == ["payroll_nz", "hris"]
    assert len(_json_documents(preview.stdout)) == 2, "one payload per target"
    assert all(sim.calls["post"] == 0 for sim in routed.targets.values()), "preview posts nothing"

    only_au = hirebridge(*cfg, "sync", "--once", "--source", "au", cwd=tmp_path)
    assert only_au.returncode == 0, only_au.stdout + only_au.stderr
    assert all(routed.tenants["au"].processed[str(s.offer_id)] == 1 for s in routed.samples["au"])
    assert routed.tenants["group"].calls["list_offers"] == 0, "the group tenant was not run"

    routed.targets["payroll_nz"].faults.error_rate = 1.0
    group = hirebridge(*cfg, "sync", "--once", "--source", "group", cwd=tmp_path)
    assert group.returncode == 1, group.stdout + group.stderr
    assert routed.targets["payroll_nz"].external_ids().total() == 0
    assert all(routed.tenants["group"].processed[k] == 0 for k in kiwis)
    parked = hirebridge(*cfg, "parked", "--source", "group", "--target", "payroll_nz",
                        cwd=tmp_path)  # fmt: skip
    assert all(k in parked.stdout for k in kiwis), parked.stdout

    # New Zealand pay is outsourced: the route to payroll_nz goes (the target stays, for the
    # offers already given to it). One offer is rerouted (now the HRIS alone, which has it);
    # another is retried on the target it was given; a third is skipped; the rest stay parked.
    routed.targets["payroll_nz"].faults.error_rate = 0.0
    data["routes"] = [r for r in data["routes"] if r["target"] != "payroll_nz"]
    config.write_text(yaml.safe_dump(data))
    rerouted, retried, skipped, *left = kiwis
    reroute = hirebridge(*cfg, "retry", rerouted, "--source", "group", "--reroute", cwd=tmp_path)
    assert reroute.returncode == 0, reroute.stderr
    assert f"re-queued group/{rerouted}: its targets will be chosen again" in reroute.stdout
    one = hirebridge(*cfg, "retry", retried, "--target", "payroll_nz", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    skip = hirebridge(*cfg, "skip", skipped, "--source", "group", "--reason", "hired elsewhere",
                      cwd=tmp_path)  # fmt: skip
    assert skip.returncode == 0, skip.stderr
    hris_posts = routed.targets["hris"].calls["post"]

    again = hirebridge(*cfg, "sync", "--once", "--source", "group", cwd=tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    assert routed.targets["payroll_nz"].external_ids()[rerouted] == 0, "rerouted away from it"
    assert routed.targets["payroll_nz"].external_ids()[retried] == 1, "its recorded target"
    assert routed.targets["hris"].calls["post"] == hris_posts, "the HRIS kept its one copy"
    marked = routed.tenants["group"].processed
    assert (marked[rerouted], marked[retried], marked[skipped]) == (1, 1, 0)
    assert all(marked[k] == 0 for k in left), "still parked"
    assert routed.targets["payroll_nz"].external_ids()[skipped] == 0
    assert all(routed.targets["payroll_au"].external_ids()[k] == 0 for k in kiwis)


@pytest.mark.parametrize("kind", [[], ["--routes"], ["--jobs"], ["--inbound"]])
def test_every_demo_refuses_to_delete_a_folder_it_did_not_make(
    tmp_path: Path, kind: list[str]
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")

    refused = hirebridge("demo", *kind, "--dir", str(folder), cwd=tmp_path)

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not made by a demo: refusing to delete it" in refused.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "keep me"
