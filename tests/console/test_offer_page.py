"""The offer page and its API reply: every attempt with its reason, map version and next try,
and the timeline (claimed, fetched, routed, mapped, each target with its id, marked), in order;
reasons scrubbed for viewers."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.console.conftest import Rig, attempted_offer
from tests.openapi import check_response

PAGE = "/console/offers/pageup/1003"


def _rows(html: str) -> list[list[str]]:
    table = html.split('<table aria-labelledby="attempts">', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_the_page_lists_every_attempt_newest_first(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    attempted_offer(rig.ledger)
    rig.sign_in("otto")
    rows = _rows(rig.client.get(PAGE).text)
    # finished, attempt, target, outcome, stage, reason, map version, HRIS id, next try
    assert [row[1:5] for row in rows] == [
        ["2", "payroll", "parked", "map"],
        ["2", "hris", "posted", "-"],
        ["1", "payroll", "failed", "post"],
        ["1", "hris", "failed", "post"],
    ]
    parked, posted, failed, hris_failed = rows
    assert "jane.doe@example.com" in parked[5], "an operator sees the reason as stored"
    assert (parked[6], parked[8]) == ("pay-v2", "waits for a retry")
    assert (posted[6], posted[7]) == ("hris-v3", "EMP-000042")
    assert failed[5] == "payroll answered 503 (HTTP 503)" and failed[6] == "pay-v1"
    assert re.match(r"\d{4}-\d\d-\d\dT", failed[8]), "the next try is shown"
    assert hris_failed[6] == "hris-v3", "each target's own map version"


def test_the_timeline_has_every_step_in_order(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    attempted_offer(rig.ledger)
    rig.sign_in("vera")
    detail = rig.client.get("/console/api/offers/pageup/1003").json()
    events = [event["event"] for event in detail["timeline"]]
    assert events == ["seen", "routed", "claimed", "fetched", "mapped", "posted to hris",
                      "parked"]  # fmt: skip
    times = [event["at"] for event in detail["timeline"]]
    assert times == sorted(times)
    claimed = next(e for e in detail["timeline"] if e["event"] == "claimed")
    assert claimed["detail"] == "attempt 2", "the latest attempt's claim"
    posted = next(e for e in detail["timeline"] if e["event"] == "posted to hris")
    assert posted["detail"] == "id EMP-000042"
    page = rig.client.get(PAGE).text
    timeline = page.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    shown = re.findall(r"<strong>(.*?)</strong>", timeline)
    assert shown == events


def test_viewers_get_the_history_scrubbed_and_the_reply_is_documented(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    attempted_offer(rig.ledger)
    spec = rig.client.get("/console/api/openapi.json").json()
    for user, sees in (("otto", True), ("vera", False)):
        rig.client.cookies.clear()
        rig.sign_in(user)
        answer = rig.client.get("/console/api/offers/pageup/1003")
        check_response(spec, "/offers/{source}/{offer_id}", "get", 200, answer.json())
        history = answer.json()["attempt_history"]
        assert len(history) == 4 and history[0]["outcome"] == "parked"
        assert history[0]["mapping_version"] == "pay-v2" and history[0]["attempt"] == 2
        assert history[2]["http_status"] == 503 and history[2]["next_attempt_at"]
        assert ("jane.doe@example.com" in answer.text) is sees
        assert ("jane.doe@example.com" in rig.client.get(PAGE).text) is sees
        assert "123 456 782" not in answer.text or sees


def test_an_offer_never_tried_says_so(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    from datetime import UTC, datetime

    rig.ledger.enqueue("pageup", [("1004", None)], datetime.now(UTC))
    rig.sign_in("vera")
    page = rig.client.get("/console/offers/pageup/1004").text
    assert "No attempt finished yet." in page
    detail = rig.client.get("/console/api/offers/pageup/1004").json()
    assert detail["attempt_history"] == []
    assert [e["event"] for e in detail["timeline"]] == ["seen"]
