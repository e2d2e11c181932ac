"""``hirebridge notices`` and the refusals of ``hirebridge support-bundle``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import Sims
from worker.cli import main
from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine, migrate
from worker.store.notices import NewNotice, Notice, NoticeStore

CHANNELS = {"channels": {"hr_email": {"url": "mailtos://u:p@smtp.example.com:587"},
                         "hr_teams": {"url": "json://127.0.0.1:9/hook"}}}  # fmt: skip


def test_notices_shows_what_waits_and_a_failing_channel(
    sims: Sims, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url, notifications=CHANNELS)))
    engine = create_store_engine(DatabaseSettings(url=db_url))
    migrate(engine)
    store = NoticeStore(engine)
    now = datetime.now(UTC)
    notice = Notice("offer", "pageup", "900103", "hris", "Registered Nurse", "2027-01-18",
                    "the new-starter form has no tax file number", "Ask ...", now)  # fmt: skip
    store.add([NewNotice(notice, ("hr_email", "hr_teams"))], timedelta(hours=24))
    store.ensure_channels(["hr_email", "hr_teams"])
    assert store.claim("hr_teams", "w", now, timedelta(minutes=5)) == 0
    store.mark_failed(
        "hr_teams", "w", "Service Unavailable - error=503.", now + timedelta(minutes=1)
    )
    engine.dispose()

    assert main(["--config", str(config), "notices"]) == 1

    captured = capsys.readouterr()
    assert "  hr_email: enabled, waiting 1" in captured.out
    assert "hr_teams: enabled, waiting 1, FAILING (1 in a row" in captured.out
    assert "Service Unavailable - error=503." in captured.out
    assert "offer pageup/900103: the new-starter form has no tax file number" in captured.out
    assert "hr_email waiting, hr_teams waiting" in captured.out
    assert "a channel is failing" in captured.err


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--since", "a week"], "--since 'a week': a duration such as 7d"),
        (["--source", "nz_live"], "--source: unknown source 'nz_live'"),
    ],
)
def test_support_bundle_refuses_a_bad_window_or_source(
    sims: Sims, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    arguments: list[str], problem: str,
) -> None:  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url)))
    out = tmp_path / "bundle.zip"

    code = main(["--config", str(config), "support-bundle", *arguments, "--out", str(out)])

    assert code == 2 and problem in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.glob("*.partial")) == []
