"""The support bundle for PageUp: what is in it, and that no secret or personal data is.

Secrets are planted in the config at several depths (a source's client secret, a target's auth
and headers, inbound and ATS credentials, URLs with a password or a key, a DSN, a channel URL)
and personal data in PageUp's error messages, its headers and config values; a real sync
against the simulator fails calls to PageUp; then ``hirebridge support-bundle`` writes the zip,
and every file in it is scanned for every planted value.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.conftest import REPO, Sims
from tests.pipelines.test_offers import run_sync
from worker.cli import main
from worker.settings import Settings, load_settings
from worker.store.db import MIGRATIONS
from worker.support.redacted import redacted_settings

SECRETS = {
    "pageup": "pageup-Cl1ent-S3cret-7f3a",
    "hris_key": "hris-Ap1-K3y-19c2",
    "hris_header": "hdr-S3cret-Value-aa01",
    "hris_bearer": "bearer-T0ken-Value-bb02",
    "ats_key": "ats-Ap1-K3y-cc03",
    "ats_query": "query-K3y-In-Url-dd04",
    "ats_password": "ats-Pa55word-ee05",
    "sentry": "sentry-Dsn-Key-ff06",
    "apna_token": "apna-Bear3r-gg07",
    "apna_target": "apna-Target-K3y-hh08",
    "pop_auth": "pop-Pa55-ii09",
    "pop_engine": "pop-Eng1ne-Pass-jj10",
    "pop_header": "pop-Head3r-kk11",
    "channel": "smtp-Pa55word-ll12",
    "hook": "hook-T0ken-mm13",
}
EMAIL, TFN, BIRTH, ACCOUNT, PHONE = (
    "jane.citizen@example.org", "123 456 782", "1987-06-05", "12345678", "+61 412 345 678",
)  # fmt: skip
NAME, SPOKEN_BIRTH, SALARY = "Jane Citizen", "5 June 1987", "85,000"
PERSONAL = (EMAIL, TFN, TFN.replace(" ", ""), BIRTH, ACCOUNT, PHONE, "412 345 678", NAME,
            SPOKEN_BIRTH, SALARY)  # fmt: skip


def planted_config(sims: Sims, db_url: str) -> dict[str, Any]:
    data = sims.settings_data(db_url)
    sims.pageup.client_secret = SECRETS["pageup"]
    sims.hris.api_key = SECRETS["hris_key"]
    data["pageup"]["client_secret"] = SECRETS["pageup"]
    hris = data["hris"]
    hris["auth"] = {**hris.get("auth", {}), "type": "api_key", "api_key": SECRETS["hris_key"]}
    hris["headers"] = {"X-Tenant-Secret": SECRETS["hris_header"],
                       "Authorization": f"Bearer {SECRETS['hris_bearer']}"}  # fmt: skip
    hris["mapping"] = str(REPO / "mappings" / "example_hris.yaml")
    data["sentry"] = {"dsn": f"https://{SECRETS['sentry']}@o1.ingest.example.com/2",
                      "environment": f"test of {EMAIL}"}  # fmt: skip
    data["ats"] = {
        "api_key": SECRETS["ats_key"],
        "mapping": str(REPO / "mappings" / "ats_jobs.yaml"),
        "source": {"url": f"https://jobs.example.com/feed?api_key={SECRETS['ats_query']}&page=1",
                   "auth": {"type": "basic", "username": "svc-jobs",
                            "password": SECRETS["ats_password"]}},
    }  # fmt: skip
    target = {"url": "https://intake.example.com/api/intake/leads",
              "mapping": str(REPO / "mappings" / "apna_leads.yaml"),
              "auth": {"type": "api_key", "api_key": SECRETS["apna_target"]}}  # fmt: skip
    data["inbound"] = {
        "apna": {"enabled": True, "auth": {"type": "bearer", "token": SECRETS["apna_token"]},
                 "target": target},
        "pop": {"enabled": True, "auth": f"popuser:{SECRETS['pop_auth']}",
                "notify_headers": {"X-Pop-Key": SECRETS["pop_header"]},
                "engine": {"password": SECRETS["pop_engine"]},
                "target": {**target, "mapping": str(REPO / "mappings" / "pop_assessments.yaml")}},
    }  # fmt: skip
    data["notifications"] = {
        "channels": {
            "hr_email": {"url": f"mailtos://hr:{SECRETS['channel']}@smtp.example.com:587"
                                f"?mode=starttls&to={EMAIL}"},
            "hr_slack": {"url": f"https://hooks.slack.com/services/T0001/B0002/{SECRETS['hook']}"},
        },
        "console_url": f"https://hirebridge.example.com/?owner={EMAIL}",
    }  # fmt: skip
    return data


def fail_pageup_calls(sims: Sims) -> tuple[str, str]:
    """Two offers PageUp refuses, quoting the applicant and a secret, in both of its error
    shapes, with other keys beside them; every error answer carries personal data and a secret
    in headers (one an error-message header some APIs use), and in its request id."""
    first, second = (str(s.offer_id) for s in sims.samples[:2])
    sims.pageup.refuse_offer[first] = (400, {
        "Message": f"Applicant '{NAME}' {EMAIL} (TFN {TFN}, born {BIRTH}, account {ACCOUNT}, "
                   f"salary ${SALARY}) is locked",
        "Applicant": {"Name": NAME, "BirthDate": SPOKEN_BIRTH},
    })  # fmt: skip
    sims.pageup.refuse_offer[second] = (422, [
        {"message": f"Phone {PHONE} of {EMAIL} born {SPOKEN_BIRTH} is invalid; client secret "
                    f"{SECRETS['pageup']} refused", "field": "Applicant.Mobile"},
        {"FirstName": NAME},
    ])  # fmt: skip
    sims.pageup.error_headers = {"X-Debug-Applicant": f"{NAME} <{EMAIL}>",
                                 "X-Error-Message": f"{NAME} {SECRETS['hris_key']}",
                                 "X-Request-Id": EMAIL}  # fmt: skip
    return first, second


def newest_revision() -> str:
    """The head of the shipped migrations: what a migrated database reports."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_the_bundle_holds_the_log_the_offers_the_config_and_versions_and_no_secret_or_pii(
    sims: Sims, db_url: str, tmp_path: Path, capsys: Any
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(planted_config(sims, db_url)))
    first, second = fail_pageup_calls(sims)
    report = run_sync(load_settings(config, required=True))
    assert report.parked == 2 and report.succeeded == 10
    out = tmp_path / "bundle.zip"

    code = main(["--config", str(config), "support-bundle", "--since", "1d", "--out", str(out)])

    assert code == 0
    assert "2 failed PageUp calls" in capsys.readouterr().out
    files = _unzip(out)
    assert sorted(name.split("/", 1)[1] for name in files) == [
        "README.txt", "config.json", "offers.csv", "pageup_errors.csv", "versions.json",
    ]  # fmt: skip
    by_name = {name.split("/", 1)[1]: text for name, text in files.items()}
    errors = list(csv.DictReader(io.StringIO(by_name["pageup_errors.csv"])))
    assert {(row["offer_id"], row["http_status"], row["path_template"]) for row in errors} == {
        (first, "400", "offers/{offer_id}"), (second, "422", "offers/{offer_id}"),
    }  # fmt: skip
    messages = {row["offer_id"]: row["pageup_messages"] for row in errors}
    assert messages[first] == (
        "Applicant [value] [email] (TFN [number], born [number], account [number], "
        "salary [amount]) is locked"
    )
    assert messages[second] == (
        "Applicant.Mobile: Phone [number] of [email] born [date] is invalid; client secret "
        "[redacted] refused"
    )
    assert {row["request_id"] for row in errors} == {""}  # an email is no request id
    offers = list(csv.DictReader(io.StringIO(by_name["offers.csv"])))
    assert sorted((row["offer_id"], row["state"]) for row in offers) == [
        (first, "parked"), (second, "parked"),
    ]  # fmt: skip
    settings = json.loads(by_name["config.json"])
    assert settings["sources"]["pageup"]["tenant_id"] == "218"  # PageUp support needs it
    assert settings["sources"]["pageup"]["client_secret"] == "[redacted]"
    assert settings["targets"]["hris"]["headers"] == {
        "X-Tenant-Secret": "[redacted]", "Authorization": "[redacted]",
    }  # fmt: skip
    assert json.loads(by_name["versions.json"])["database"]["schema_revision"] == newest_revision()
    assert "pageup_errors.csv" in by_name["README.txt"]
    _assert_clean(files, db_url)


def test_secrets_are_removed_at_any_depth_and_from_urls() -> None:
    settings = Settings(
        pageup={"tenant_id": "218", "client_id": "c", "client_secret": "s3cr3t-1"},
        hris={"url": "https://svc:url-Pa55@hris.example.com/api?token=t0k3n-2&x=1",
              "mapping": "m.yaml", "headers": {"X-Custom-Auth": "h3ad3r-3"},
              "auth": {"type": "oauth2", "token_url": "https://login.example.com/token",
                       "client_id": "cid", "client_secret": "s3cr3t-4"}},
        database={"url": "postgresql://hirebridge:db-Pa55-5@db.internal:5432/hb"},
    )  # fmt: skip
    cleaned = json.dumps(redacted_settings(settings))
    for secret in ("s3cr3t-1", "url-Pa55", "t0k3n-2", "h3ad3r-3", "s3cr3t-4", "db-Pa55-5"):
        assert secret not in cleaned
    dumped = redacted_settings(settings)
    assert dumped["database"]["url"] == "postgresql://[redacted]@db.internal:5432/hb"
    hris = dumped["targets"]["hris"]
    assert hris["url"] == "https://[redacted]@hris.example.com/api?token=[redacted]&x=[redacted]"
    assert hris["auth"]["token_url"] == "https://login.example.com/token"
    assert hris["auth"]["type"] == "oauth2" and hris["auth"]["client_id"] == "cid"
    sqlite = "sqlite:////var/lib/hirebridge/state.sqlite"  # no credential: left as it is
    plain = Settings(**{**settings.model_dump(), "pageup": None, "hris": None,
                        "database": {"url": sqlite}})  # fmt: skip
    assert redacted_settings(plain)["database"]["url"] == sqlite


def _unzip(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def _assert_clean(files: dict[str, str], db_url: str) -> None:
    planted = [*SECRETS.values(), *PERSONAL]
    password = urlsplit(db_url).password
    if password:  # the test PostgreSQL's own: its URL is in the config too
        planted.append(password)
    for name, text in files.items():
        leaked = [value for value in planted if value in text]
        assert not leaked, (name, leaked)
