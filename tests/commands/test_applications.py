"""``hirebridge applications ...`` as an admin runs it: sync --once, status, retry, skip, and
the export in both formats (through the map: personal data only when it selects it)."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, Sims
from worker.cli import main

JOB = 3001
# A map for reporting: no personal data selected.
REPORTING_MAP = """
name: applications-report
when: "application.ApplicationInfo.Status != 'Withdrawn'"
find: {path: "?externalId={payload.externalId}", id: "items[0].id", update: {path: "/{id}"}}
fields:
  externalId: {expr: "to_string(application.ApplicationInfo.PUReferenceID)", required: true}
  stage: application.ApplicationInfo.Stage
  job.id: job.id
  answers: {expr: "application_form.Answers[].QuestionID", type: array}
"""


@pytest.fixture
def config(sims: Sims, db_url: str, tmp_path: Path) -> Path:
    sims.pageup.applications.add_job(JOB, 12)
    sims.hris.required = ("externalId",)
    data = sims.settings_data(db_url, sync={"retry_backoff_initial_seconds": 0})
    data["pageup"]["paging"] = {"mode": "page_number", "page_size": 5}
    data["pageup"]["applications"] = {"enabled": True, "job_ids": [str(JOB)],
                                      "targets": ["hris"]}  # fmt: skip
    data["hris"]["applications_mapping"] = str(REPO / "mappings" / "example_applications.yaml")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def with_map(config: Path, text: str) -> Path:
    mapping = config.parent / "report.yaml"
    mapping.write_text(text)
    data = yaml.safe_load(config.read_text())
    data["hris"]["applications_mapping"] = str(mapping)
    config.write_text(yaml.safe_dump(data))
    return config


def test_export_csv_has_the_maps_fields_only(
    config: Path, sims: Sims, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_map(config, REPORTING_MAP)
    sims.pageup.applications.entry(800002)["ApplicationInfo"]["Status"] = "Withdrawn"
    out = tmp_path / "apps.csv"
    argv = ["--config", str(config), "applications", "export", "--source", "pageup", "--job",
            str(JOB), "--format", "csv", "--out", str(out)]  # fmt: skip

    assert main(argv) == 0

    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["externalId", "stage", "job.id", "answers"]
    assert len(rows) == 1 + 11  # the withdrawn one is left out by the map's when
    assert rows[1][0] == "800001" and rows[1][2] == str(JOB) and rows[1][3] == "[31, 32]"
    text = out.read_text(encoding="utf-8")
    for applicant in sims.pageup.applications.applicants.values():
        for key in ("FirstName", "LastName", "Email", "Phone"):
            assert str(applicant[key]) not in text
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "11 application(s) through hris's map (1 left out by its when)" in (
        capsys.readouterr().out
    )
    assert sims.hris.calls["post"] == 0  # an export sends nothing


def test_export_jsonl_carries_personal_data_the_map_selects(
    config: Path, sims: Sims, tmp_path: Path
) -> None:
    out = tmp_path / "apps.jsonl"
    argv = ["--config", str(config), "applications", "export", "--source", "pageup", "--job",
            f"REQ-{JOB}", "--external", "--format", "jsonl", "--out", str(out)]  # fmt: skip

    assert main(argv) == 0

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 12
    first = lines[0]
    applicant = sims.pageup.applications.applicants["600001"]
    assert first["externalId"] == "app-800001" and first["jobId"] == f"REQ-{JOB}"
    assert (first["firstName"], first["email"]) == (applicant["FirstName"], applicant["Email"])
    assert "Phone" not in json.dumps(first) and applicant["Phone"] not in json.dumps(lines)


def test_export_of_a_job_pageup_does_not_have_names_it(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none.csv"
    argv = ["--config", str(config), "applications", "export", "--source", "pageup", "--job",
            "999", "--format", "csv", "--out", str(out)]  # fmt: skip

    assert main(argv) == 1

    assert "source pageup: job 999: HTTP 404" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".none.csv*"))


def test_sync_once_status_skip_and_retry(
    config: Path, sims: Sims, capsys: pytest.CaptureFixture[str]
) -> None:
    sims.hris.refuse_echoing.add("app-800004")
    base = ["--config", str(config), "applications"]

    assert main([*base, "sync", "--once"]) == 1
    out = capsys.readouterr().out
    assert "pageup: applications run " in out
    assert "jobs 1, listed 12; created 11, updated 0, unchanged 0" in out and "failed 1" in out

    assert main([*base, "status"]) == 0
    out = capsys.readouterr().out
    assert "pageup -> hris: delivered 11, parked 1" in out
    assert f"pageup job {JOB}: 12 listed" in out
    assert "application 800004 -> hris (job 3001) parked, 1 tries, at post: HTTP 422" in out

    assert main(["--config", str(config), "status"]) == 0  # the offers' status points here
    out = capsys.readouterr().out
    assert "applications (details: `hirebridge applications status`)\n" in out
    assert "  pageup -> hris: delivered 11, parked 1\n" in out

    assert main([*base, "skip", "800004", "--source", "pageup", "--reason", "dup"]) == 0
    assert main([*base, "retry", "800099", "--source", "pageup"]) == 1
    assert "800099: not failed, parked or skipped in pageup" in capsys.readouterr().err
    sims.hris.refuse_echoing.clear()
    assert main([*base, "retry", "800004", "--source", "pageup", "--reason", "fixed"]) == 0
    assert main([*base, "sync", "--once"]) == 0
    assert "created 1, updated 0, unchanged 11" in capsys.readouterr().out
    assert sims.hris.external_ids()["app-800004"] == 1


def test_status_names_a_flow_that_has_not_run_yet_and_follows_the_scope(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "status"]) == 0
    assert "  pageup -> hris: nothing yet\n" in capsys.readouterr().out

    assert main(["--config", str(config), "status", "--target", "hris"]) == 0
    assert "  pageup -> hris: nothing yet\n" in capsys.readouterr().out

    data = yaml.safe_load(config.read_text())
    data["pageup"]["applications"]["enabled"] = False
    config.write_text(yaml.safe_dump(data))
    assert main(["--config", str(config), "status"]) == 0
    assert "applications" not in capsys.readouterr().out


def test_sync_once_refuses_a_source_without_the_flow(
    sims: Sims, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url)))

    assert main(["--config", str(config), "applications", "sync", "--once"]) == 2

    assert "no source has applications.enabled" in capsys.readouterr().err


def test_validate_mappings_checks_each_targets_applications_map(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "validate-mappings"]) == 0
    out = capsys.readouterr().out
    assert "ok  " in out and "example_hris.yaml" in out
    assert "example_applications.yaml  (11 fields" in out

    with_map(config, REPORTING_MAP.replace("find:", "look_up:"))
    assert main(["--config", str(config), "validate-mappings"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'look_up'" in err and "needs find:" not in err
