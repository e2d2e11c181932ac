"""The console over HTTP: sign-in, roles, CSRF, security headers, masking and the audit trail
(worker/console/web.py, pages.py, api.py), against a real SQLite ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.console.conftest import PII_REASON, Rig, parked_offer
from worker.store.interventions import Interventions, OfferKey


def test_pages_need_a_sign_in_and_a_session_cookie_is_strict_and_http_only(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    assert rig.client.get("/console/", follow_redirects=False).headers["location"] == (
        "/console/login"
    )
    assert rig.client.get("/console/api/overview").status_code == 401
    signed = rig.sign_in("vera")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # loopback: plain http
    page = rig.client.get("/console/")
    assert page.status_code == 200 and "Overview" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text  # no inline script anywhere


def test_the_cookie_is_secure_off_loopback(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    signed = rig.client.post(
        "/console/login",
        headers={"host": "console.example.com"},
        data={"user": "vera", "password": "viewer-password-1"},
        follow_redirects=False,
    )
    assert "secure" in signed.headers["set-cookie"].lower()


def test_wrong_password_then_lockout(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(max_failed_logins=3)
    for _ in range(3):
        assert rig.sign_in("otto", "nope").status_code == 401
    locked = rig.sign_in("otto")
    assert locked.status_code == 429 and "too many failed sign-ins" in locked.text


def test_a_viewer_sees_no_action_and_cannot_act(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    parked_offer(rig.ledger)
    rig.sign_in("vera")
    page = rig.client.get("/console/offers/pageup/1001")
    assert "field &#39;tfn&#39;: required" in page.text
    assert 'id="retry"' not in page.text and "Mark processed" not in page.text
    token = rig.page_csrf("/console/offers/pageup/1001")  # the sign-out form's token
    refused = rig.client.post("/console/offers/pageup/1001/retry", data={"csrf": token})
    assert refused.status_code == 403
    api = rig.client.post(
        "/console/api/offers/pageup/1001/retry", json={}, headers={"x-csrf-token": rig.csrf()}
    )
    assert api.status_code == 403
    assert rig.ledger.get("pageup", "1001").parked_at is not None  # type: ignore[union-attr]


def test_an_operator_retries_with_a_token_and_is_the_audited_by(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    parked_offer(rig.ledger)
    rig.sign_in("otto")
    no_token = rig.client.post("/console/offers/pageup/1001/retry", data={"reason": "x"})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    bad = rig.client.post(
        "/console/api/offers/pageup/1001/retry", json={}, headers={"x-csrf-token": "forged"}
    )
    assert bad.status_code == 403
    token = rig.page_csrf("/console/offers/pageup/1001")
    done = rig.client.post(
        "/console/offers/pageup/1001/retry",
        data={"csrf": token, "reason": "map fixed"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "re-queued" in done.headers["location"]
    offer = rig.ledger.get("pageup", "1001")
    assert offer is not None and offer.parked_at is None and offer.status == "pending"
    (action,) = Interventions(rig.ledger).actions(OfferKey("pageup", "1001"))
    assert (action["action"], action["actor"], action["reason"]) == ("retry", "otto", "map fixed")


def test_skip_needs_a_reason_and_mark_processed_a_confirmation(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    parked_offer(rig.ledger)
    rig.sign_in("otto")
    headers = {"x-csrf-token": rig.csrf()}
    api = rig.client
    assert (
        api.post("/console/api/offers/pageup/1001/skip", json={}, headers=headers).status_code
        == 422
    )
    unconfirmed = api.post(
        "/console/api/offers/pageup/1001/mark-processed",
        json={"reason": "done by hand"},
        headers=headers,
    )
    assert unconfirmed.status_code == 422
    skipped = api.post(
        "/console/api/offers/pageup/1001/skip", json={"reason": "duplicate"}, headers=headers
    )
    assert skipped.status_code == 200 and skipped.json()["ok"]
    assert rig.ledger.get("pageup", "1001").status == "skipped"  # type: ignore[union-attr]


def test_a_viewer_never_sees_personal_values(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    parked_offer(rig.ledger)
    Interventions(rig.ledger).note(
        OfferKey("pageup", "1001"), "skip", actor="otto", reason=PII_REASON, target=None
    )
    rig.sign_in("otto")
    assert "jane.doe@example.com" in rig.client.get("/console/offers/pageup/1001").text
    rig.client.cookies.clear()
    rig.sign_in("vera")
    for path in ("/console/offers/pageup/1001", "/console/api/offers/pageup/1001"):
        body = rig.client.get(path).text
        assert "jane.doe@example.com" not in body and "123 456 782" not in body


def test_roles_gate_the_api_and_the_maps(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(allow_map_apply=True)
    rig.sign_in("otto")
    headers = {"x-csrf-token": rig.csrf()}
    check = rig.client.post(
        "/console/api/maps/hris/check", json={"candidate": "x"}, headers=headers
    )
    assert check.status_code == 403
    rig.client.cookies.clear()
    rig.sign_in("ada")
    headers = {"x-csrf-token": rig.csrf()}
    broken = rig.client.post(
        "/console/api/maps/hris/apply",
        json={"candidate": "fields:\n  a: nosuch(x)\n"},
        headers=headers,
    )
    assert broken.status_code == 422
    problem = broken.json()["problems"][0]
    assert problem["line"] == 2 and "nosuch" in problem["problem"]
    assert rig.reloads == []


def test_proxy_mode_believes_headers_only_from_trusted_peers(
    make_rig: Callable[..., Rig],
) -> None:
    proxy: dict[str, Any] = {"group_roles": {"hr-ops": "operator"}}
    headers = {"X-Forwarded-User": "sam", "X-Forwarded-Groups": "hr-ops"}
    trusted = make_rig(client_host="10.0.0.5", mode="proxy", proxy=proxy)
    session = trusted.client.get("/console/api/session", headers=headers)
    assert session.status_code == 200 and session.json()["role"] == "operator"
    untrusted = make_rig(client_host="192.168.7.7", mode="proxy", proxy=proxy)
    assert untrusted.client.get("/console/api/session", headers=headers).status_code == 401


def test_the_overview_refreshing_itself_does_not_keep_an_idle_session_alive(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.sign_in("vera")
    page = rig.client.get("/console/")
    assert 'content="30; url=/console/?refresh=auto"' in page.text
    assert "set-cookie" in page.headers  # the user at work: the idle clock starts again
    assert "set-cookie" not in rig.client.get("/console/?refresh=auto").headers
    stopped = rig.client.get("/console/?refresh=off").text  # WCAG 2.2.1: it can be turned off
    assert 'http-equiv="refresh"' not in stopped and 'href="/console/"' in stopped
