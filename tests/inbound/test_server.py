"""The inbound endpoints: every answer Apna and the POP Engine can get, and what is stored."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from tests.inbound.conftest import APNA_PASSWORD, APNA_USER, POP_AUTH, Rig, inbound_settings
from worker.inbound import pop
from worker.simulators.apna import ApnaPusher, make_leads
from worker.simulators.pop_engine import Notifier
from worker.store.thread import StoreThread

APNA = (APNA_USER, APNA_PASSWORD)
DETAILS = {"application_id": "10013810", "position_id": "10002063", "aname": "EPOP Leadership",
           "started": "2022-01-19", "completed": "2022-01-19", "report_id": "10012781",
           "report_name": "EPOP"}  # fmt: skip


def post_lead(rig: Rig, lead: Any, **kw: Any) -> httpx.Response:
    kw.setdefault("auth", APNA)
    return httpx.post(f"{rig.url}/inbound/apna", json=lead, **kw)


def test_a_valid_lead_is_stored_then_answered_with_apnas_exact_body(rig: Rig) -> None:
    lead = make_leads(1)[0]
    reply = post_lead(rig, lead)
    assert reply.status_code == 200
    assert reply.json() == {"status": "success", "message": "Lead data received successfully."}
    (item,) = rig.inbox.items()
    assert item.source == "apna" and item.status == "pending"
    assert json.loads(item.payload or "") == lead  # extras (the job reference) are kept
    assert rig.stored == [1]


def test_apnas_retry_of_the_same_lead_is_recognised(rig: Rig) -> None:
    lead = make_leads(1)[0]
    assert post_lead(rig, lead).status_code == 200
    reordered = dict(reversed(list(lead.items())))  # same lead, keys in another order
    assert post_lead(rig, reordered).status_code == 200
    (item,) = rig.inbox.items()
    assert item.repeats == 1 and rig.stored == [1]


@pytest.mark.parametrize(
    "auth",
    [None, ("apna-user", "wrong"), ("someone", APNA_PASSWORD)],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_wrong_or_missing_credentials_get_a_json_401(rig: Rig, auth: Any) -> None:
    reply = post_lead(rig, make_leads(1)[0], auth=auth)
    assert reply.status_code == 401 and reply.json()["status"] == "error"
    assert not rig.inbox.items()


def test_bearer_token_auth(make_rig: Any) -> None:
    settings = inbound_settings(apna={"auth": {"type": "bearer", "token": "t0ken-for-tests"}})
    rig = make_rig(settings)
    lead = make_leads(1)[0]
    good = httpx.post(f"{rig.url}/inbound/apna", json=lead,
                      headers={"Authorization": "Bearer t0ken-for-tests"})  # fmt: skip
    bad = httpx.post(f"{rig.url}/inbound/apna", json=lead, headers={"Authorization": "Bearer x"})
    assert (good.status_code, bad.status_code) == (200, 401)


def test_an_invalid_lead_gets_400_naming_each_field_and_is_not_stored(
    rig: Rig, captured_logs: io.StringIO
) -> None:
    lead = make_leads(1)[0]
    lead.update(gender="x", current_salary="40000", date_of_birth="22/06/1996")
    lead["educations"][0]["start"] = "last year"
    lead["contact_info"] = {"email": "", "phone_number": None}
    reply = post_lead(rig, lead)
    assert reply.status_code == 400
    fields = {problem["field"] for problem in reply.json()["errors"]}
    assert fields == {"gender", "current_salary", "date_of_birth", "educations.0.start",
                      "contact_info"}  # fmt: skip
    assert not rig.inbox.items()
    assert lead["full_name"] not in captured_logs.getvalue()
    assert "22/06/1996" not in reply.text  # values are never echoed


def test_content_type_size_and_source_address_limits(make_rig: Any) -> None:
    rig = make_rig()
    lead = make_leads(1)[0]
    as_text = httpx.post(f"{rig.url}/inbound/apna", content=json.dumps(lead), auth=APNA,
                         headers={"Content-Type": "text/plain"})  # fmt: skip
    assert as_text.status_code == 415
    lead["skills"] = ["x" * 100] * 50  # over the 4 KiB limit of these settings
    assert post_lead(rig, lead).status_code == 413
    elsewhere = make_rig(inbound_settings(apna={"allow_ips": ["10.0.0.0/8"]}))
    assert post_lead(elsewhere, make_leads(1)[0]).status_code == 403
    assert not rig.inbox.items()


def failing_store(failures: int, real: Any) -> Any:
    left = [failures]

    async def store(source: str, key: str, payload: str) -> bool:
        if left[0] > 0:
            left[0] -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return bool(await real(source, key, payload))

    return store


def test_a_lead_that_cannot_be_stored_gets_503_and_apnas_retry_lands_it(
    make_rig: Any, db_url: str
) -> None:
    from worker.inbound.server import InboxWriter

    probe = make_rig()
    writer = InboxWriter(probe.inbox, StoreThread(probe.inbox.engine), stored=lambda: None)
    rig = make_rig(store=failing_store(1, writer.add))
    pusher = ApnaPusher(f"{rig.url}/inbound/apna", auth=APNA, retry_delay=0.01)

    async def push() -> Any:
        async with httpx.AsyncClient() as client:
            return await pusher.push(client, make_leads(1)[0])

    result = asyncio.run(push())
    assert result.statuses == [503, 200] and len(rig.inbox.items()) == 1


def pop_url(rig: Rig, application_id: str = "10013810") -> str:
    return f"{rig.url}/inbound/pop/{application_id}"


def pop_auth() -> tuple[str, str]:
    user, _, password = POP_AUTH.partition(":")
    return user, password


@pytest.mark.parametrize("method", ["POST", "PATCH", "GET"])
def test_pop_notifications_by_each_method_are_stored(rig: Rig, method: str) -> None:
    body = DETAILS if method != "GET" else None
    reply = httpx.request(method, pop_url(rig), json=body, auth=pop_auth())
    assert reply.status_code == 200
    (item,) = rig.inbox.items()
    stored = json.loads(item.payload or "")
    assert stored["application_id"] == "10013810" and stored["method"] == method
    assert stored["details"] == body


def test_pop_repeats_are_recognised_per_application_and_report(rig: Rig) -> None:
    for _ in range(3):
        assert httpx.post(pop_url(rig), json=DETAILS, auth=pop_auth()).status_code == 200
    second_report = {**DETAILS, "report_id": "10012782"}
    assert httpx.post(pop_url(rig), json=second_report, auth=pop_auth()).status_code == 200
    items = rig.inbox.items()
    assert [item.dedup_key for item in items] == ["10013810:10012781", "10013810:10012782"]
    assert items[0].repeats == 2


@pytest.mark.parametrize(
    ("url_id", "body", "auth", "status"),
    [
        ("10013810", DETAILS, ("pop-user", "wrong"), 401),
        ("not-a-number", None, None, 400),
        ("99999999999999999999", None, None, 400),
        ("10013811", DETAILS, None, 400),
        ("10013810", [1, 2], None, 400),
    ],
    ids=["wrong-auth", "not-an-id", "over-64-bits", "ids-differ", "not-an-object"],
)
def test_pop_refusals(rig: Rig, url_id: str, body: Any, auth: Any, status: int) -> None:
    reply = httpx.post(pop_url(rig, url_id), json=body, auth=auth or pop_auth())
    assert reply.status_code == status and not rig.inbox.items()


def test_the_engine_retries_our_503_because_our_config_lists_it(make_rig: Any, db_url: str) -> None:
    from worker.inbound.server import InboxWriter

    probe = make_rig()
    writer = InboxWriter(probe.inbox, StoreThread(probe.inbox.engine), stored=lambda: None)
    rig = make_rig(store=failing_store(3, writer.add))
    settings = inbound_settings(public_url=rig.url.replace("http://", "https://"))
    config = pop.build_config(settings, show_secret=True).replace("https://", "http://")
    notifier = Notifier(config, time_scale=0)

    async def notify() -> Any:
        async with httpx.AsyncClient() as client:
            return await notifier.notify(client, "10013810", DETAILS)

    result = asyncio.run(notify())
    assert result.outcome == "delivered" and result.statuses == [503, 503, 503, 200]
    assert len(rig.inbox.items()) == 1


def test_the_engine_drops_a_notification_we_refuse_as_invalid(make_rig: Any) -> None:
    rig = make_rig()
    settings = inbound_settings(public_url=rig.url.replace("http://", "https://"))
    config = pop.build_config(settings, show_secret=True).replace("https://", "http://")

    async def notify() -> Any:
        async with httpx.AsyncClient() as client:
            return await Notifier(config, time_scale=0).notify(client, "1", DETAILS)

    result = asyncio.run(notify())  # the ids differ: 400, not in http_err
    assert result.outcome == "dropped" and result.statuses == [400]


@pytest.mark.parametrize(
    "url_id",
    ["10013810%0A", "10013810%0D%0A", "%2010013810", "10013810%20", "+10013810", "%D9%A1%D9%A2"],
    ids=["newline", "crlf", "leading-space", "trailing-space", "plus", "arabic-indic-digits"],
)
def test_an_application_id_is_matched_as_a_whole_so_no_variant_makes_a_second_key(
    rig: Rig, url_id: str
) -> None:
    reply = httpx.post(pop_url(rig, url_id), json=None, auth=pop_auth())
    assert reply.status_code == 400
    assert httpx.post(pop_url(rig), json=DETAILS, auth=pop_auth()).status_code == 200
    (item,) = rig.inbox.items()  # stored exactly once, under the one true id
    assert item.dedup_key == "10013810:10012781" and item.repeats == 0


@pytest.mark.parametrize(
    "report_id",
    ["10012781\n", " 10012781", "x" * 65, {"id": 1}, True],
    ids=["newline", "space", "too-long", "object", "bool"],
)
def test_a_report_id_that_would_make_a_second_dedup_key_is_refused(
    rig: Rig, report_id: Any
) -> None:
    reply = httpx.post(pop_url(rig), json={**DETAILS, "report_id": report_id}, auth=pop_auth())
    assert reply.status_code == 400 and "report_id" in reply.json()["message"]
    assert not rig.inbox.items()
    assert httpx.post(pop_url(rig), json={**DETAILS, "report_id": 10012781},
                      auth=pop_auth()).status_code == 200  # fmt: skip
    assert [item.dedup_key for item in rig.inbox.items()] == ["10013810:10012781"]


NOT_JSON = [("NaN", "NaN or Infinity"), ("Infinity", "NaN or Infinity"),
            ("-Infinity", "NaN or Infinity"), ("1e400", "too large for a 64-bit float"),
            ('"\\ud800"', "unpaired UTF-16 surrogate")]  # fmt: skip


@pytest.mark.parametrize(("value", "problem"), NOT_JSON)
def test_values_json_has_not_are_refused_in_a_lead_even_where_the_map_does_not_look(
    rig: Rig, value: str, problem: str
) -> None:
    lead = make_leads(1)[0]
    text = json.dumps({**lead, "unread_extra": "PLACEHOLDER"}).replace('"PLACEHOLDER"', value)
    reply = httpx.post(f"{rig.url}/inbound/apna", content=text, auth=APNA,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert reply.status_code == 400
    (error,) = reply.json()["errors"]
    assert error["field"] == "(body)" and problem in error["message"]
    assert not rig.inbox.items()
    assert post_lead(rig, lead).status_code == 200 and len(rig.inbox.items()) == 1


@pytest.mark.parametrize(("value", "problem"), NOT_JSON)
def test_values_json_has_not_are_refused_anywhere_in_a_notification(
    rig: Rig, value: str, problem: str
) -> None:
    text = json.dumps({**DETAILS, "extra": {"deep": ["PLACEHOLDER"]}}).replace('"PLACEHOLDER"',
                                                                             value)  # fmt: skip
    reply = httpx.post(pop_url(rig), content=text, auth=pop_auth())
    assert reply.status_code == 400 and problem in reply.json()["message"]
    assert not rig.inbox.items()


def test_a_body_nested_100000_deep_is_a_400_not_a_500_that_the_engine_retries(
    make_rig: Any,
) -> None:
    rig = make_rig(inbound_settings(max_body_bytes=1_048_576))
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    notified = httpx.post(pop_url(rig), content=deep, auth=pop_auth())
    leads = httpx.post(f"{rig.url}/inbound/apna", content=deep, auth=APNA,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert (notified.status_code, leads.status_code) == (400, 400)
    assert "nested deeper than 32 levels" in notified.json()["message"]
    assert leads.json()["errors"][0]["message"] == "the body is nested deeper than 32 levels"
    assert 400 not in pop.RETRY_STATUSES
    assert not rig.inbox.items()


def test_a_date_with_a_trailing_newline_is_not_an_iso_date(rig: Rig) -> None:
    lead = {**make_leads(1)[0], "date_of_birth": "1996-06-22\n"}
    reply = post_lead(rig, lead)
    assert reply.status_code == 400
    assert reply.json()["errors"] == [
        {"field": "date_of_birth", "message": "has leading or trailing whitespace"}
    ]
    assert not rig.inbox.items()
