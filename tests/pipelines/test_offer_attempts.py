"""A real run records each attempt's outcome with the map version it used, and the latest
attempt's claimed, fetched and mapped times (worker/pipelines/offers.py, store/attempts.py)."""

from __future__ import annotations

import pytest

from tests.conftest import Sims
from tests.pipelines.test_offers import run_sync
from worker.mapping.loader import load_field_map
from worker.runtime import open_store
from worker.store.attempts import AttemptHistory
from worker.store.ledger import Ledger


@pytest.mark.parametrize("sims", [{"offers": 3, "missing_tfn": frozenset({1})}], indirect=True)
def test_a_run_keeps_each_outcome_with_its_map_version_and_steps(sims: Sims, db_url: str) -> None:
    settings = sims.settings(db_url)
    version = load_field_map(settings.targets["hris"].mapping).version
    report = run_sync(settings)
    assert (report.succeeded, report.parked) == (2, 1)
    engine = open_store(settings)
    try:
        history = AttemptHistory(engine)
        done = history.of("pageup", "900101")
        parked = history.of("pageup", "900102")
        done_steps = history.steps("pageup", "900101")
        parked_steps = history.steps("pageup", "900102")
        state = Ledger(engine).get("pageup", "900101")
    finally:
        engine.dispose()

    assert [(r.target, r.outcome, r.stage) for r in done] == [
        (None, "processed", "mark_processed"), ("hris", "posted", None)]  # fmt: skip
    posted = done[1]
    assert state is not None and state.record_id
    assert posted.mapping_version == version and posted.record_id == state.record_id
    assert posted.attempt == 1 and posted.run_id is not None and posted.started_at is not None
    claimed, fetched, mapped = (done_steps[k] for k in ("claimed", "fetched", "mapped"))
    assert claimed is not None and fetched is not None and mapped is not None
    assert claimed <= fetched <= mapped <= posted.finished_at

    (failure,) = parked
    assert (failure.target, failure.outcome, failure.stage) == ("hris", "parked", "map")
    assert failure.mapping_version == version, "the map that refused it"
    assert failure.reason is not None and "tax" in failure.reason.lower()
    assert failure.next_attempt_at is None
    assert parked_steps["fetched"] is not None and parked_steps["mapped"] is None
