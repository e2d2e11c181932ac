"""The field-map workbench (worker/console/maps.py, workbench.py): apply keeps the versions it
replaces and rolls back; off, it says how to apply instead; a refused reload restores."""

from __future__ import annotations

from collections.abc import Callable

from tests.console.conftest import Rig
from worker.console import maps

GOOD = "fields:\n  externalId: {expr: to_string(offer.PUReferenceID), required: true}\n"


def test_apply_keeps_the_replaced_versions_and_rolls_back(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(allow_map_apply=True, map_versions_kept=2)
    path = rig.settings.targets["hris"].mapping
    original = path.read_text()
    rig.sign_in("ada")
    headers = {"x-csrf-token": rig.csrf()}
    for n in range(3):
        applied = rig.client.post("/console/api/maps/hris/apply", headers=headers,
                                  json={"candidate": GOOD + f"# {n}\n"})  # fmt: skip
        assert applied.status_code == 200, applied.text
    assert path.read_text() == GOOD + "# 2\n" and len(rig.reloads) == 3
    kept = maps.saved_versions(path)
    assert len(kept) == 2  # map_versions_kept
    texts = {(maps.versions_folder(path) / name).read_text() for name in kept}
    assert texts == {GOOD + "# 0\n", GOOD + "# 1\n"}  # the original was the oldest: dropped
    assert original not in texts
    back = rig.client.post("/console/api/maps/hris/rollback", headers=headers,
                           json={"version": next(n for n in kept if "# 0" in
                                 (maps.versions_folder(path) / n).read_text())})  # fmt: skip
    assert back.status_code == 200 and path.read_text() == GOOD + "# 0\n"
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_with_apply_off_the_page_says_how_and_apply_is_refused(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    path = rig.settings.targets["hris"].mapping
    before = path.read_text()
    rig.sign_in("ada")
    page = rig.client.get("/console/maps/hris")
    assert "Applying from the console is off" in page.text and 'id="apply"' not in page.text
    refused = rig.client.post("/console/api/maps/hris/apply", json={"candidate": GOOD},
                              headers={"x-csrf-token": rig.csrf()})  # fmt: skip
    assert refused.status_code == 422 and "console.allow_map_apply" in refused.text
    assert path.read_text() == before and rig.reloads == []


def test_a_refused_reload_puts_the_previous_map_back(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(allow_map_apply=True)
    path = rig.settings.targets["hris"].mapping
    before = path.read_text()
    rig.reload_answers.append((False, "hris: map.yaml:2:3: something else is wrong"))
    rig.sign_in("ada")
    answer = rig.client.post("/console/api/maps/hris/apply", json={"candidate": GOOD},
                             headers={"x-csrf-token": rig.csrf()})  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        {"line": 2, "problem": "hris: map.yaml:2:3: something else is wrong"}
    ]
    assert path.read_text() == before and len(rig.reloads) == 2  # refused, then the old again
