"""``hirebridge inbox`` and ``inbox-retry`` on purged parked pushes (both stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import Sims
from tests.store.test_inbox import parked, purge
from worker.cli import main
from worker.settings import DatabaseSettings
from worker.store.db import create_store_engine, migrate
from worker.store.inbox import Inbox


def test_a_purged_push_shows_as_purged_and_cannot_be_retried(
    sims: Sims, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(sims.settings_data(db_url)))
    engine = create_store_engine(DatabaseSettings(url=db_url))
    migrate(engine)
    inbox = Inbox(engine)
    old, recent = parked(inbox, "old", days_ago=31), parked(inbox, "recent", days_ago=2)
    assert purge(inbox) == [old]
    today = f"{datetime.now(UTC):%Y-%m-%d}"

    assert main(["--config", str(config), "inbox"]) == 0
    shown = capsys.readouterr().out
    assert "apna   purged          1" in shown and "apna   parked          1" in shown
    assert (f"#{old} apna purged (body deleted {today}: cannot be delivered), 0 attempts: "
            "HTTP 422 from the target") in shown  # fmt: skip

    assert main(["--config", str(config), "inbox-retry", str(old)]) == 1
    refused = capsys.readouterr()
    assert refused.out == ""
    assert f"inbox #{old}: purged on {today}: its body was deleted" in refused.err
    assert "cannot be delivered; the sender (apna) must push it again" in refused.err

    assert main(["--config", str(config), "inbox-retry", "--all-parked"]) == 0
    everything = capsys.readouterr().out
    assert "1 parked push(es) due again" in everything
    assert "1 purged push(es) left: their bodies were deleted" in everything

    assert main(["--config", str(config), "inbox-retry", str(recent)]) == 1
    assert "not parked (failed): the worker retries it on its own" in capsys.readouterr().err
    assert main(["--config", str(config), "inbox-retry", "999"]) == 1
    assert "inbox #999: no such push" in capsys.readouterr().err

    items = {item.id: item for item in inbox.items()}
    assert items[old].state == "purged" and items[old].payload is None
    assert items[recent].state == "failed" and items[recent].payload is not None
    soon = datetime.now(UTC) + timedelta(seconds=1)
    due = inbox.claim_due(owner="t", lease_seconds=60, limit=10, untouched_since=soon)
    assert [item.id for item in due] == [recent]
    engine.dispose()
