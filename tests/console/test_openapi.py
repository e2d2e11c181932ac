"""The console API's OpenAPI document (worker/console/openapi.yaml): a valid document, served,
naming every API route, and true of the real answers, for each role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import Mount, Route

from tests.console.conftest import Rig, parked_offer
from tests.openapi import check_document, check_response


def test_the_document_is_valid_and_names_every_route(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    spec: dict[str, Any] = rig.client.get("/console/api/openapi.json").json()
    check_document(spec)
    (console,) = rig.client.app.routes  # type: ignore[attr-defined]
    api = next(r for r in console.app.routes if isinstance(r, Mount) and r.path == "/api")
    routes = api.routes
    served = {r.path.replace("{item_id:int}", "{item_id}") for r in routes if isinstance(r, Route)}
    assert served == set(spec["paths"])
    assert not any(isinstance(r, Mount) for r in routes)


def test_real_answers_match_the_document(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(allow_map_apply=True)
    parked_offer(rig.ledger)
    parked_offer(rig.ledger, "1002")
    spec = rig.client.get("/console/api/openapi.json").json()
    client = rig.client
    assert client.get("/console/api/session").status_code == 401
    check_response(spec, "/session", "get", 401, client.get("/console/api/session").json())
    for user in ("vera", "ada"):
        client.cookies.clear()
        rig.sign_in(user)
        for path in ("/session", "/overview", "/offers", "/offers/{source}/{offer_id}", "/runs",
                     "/inbox", "/jobs", "/maps/{target}"):  # fmt: skip
            real = path.replace("{source}", "pageup").replace("{offer_id}", "1001")
            answer = client.get("/console/api" + real.replace("{target}", "hris"))
            check_response(spec, path, "get", answer.status_code, answer.json())
    answer = client.get("/console/api/offers/pageup/nosuch")
    check_response(spec, "/offers/{source}/{offer_id}", "get", 404, answer.json())
    headers = {"x-csrf-token": rig.csrf()}
    posts: list[tuple[str, str, dict[str, Any], int]] = [
        ("/offers/{source}/{offer_id}/retry", "/offers/pageup/1001/retry", {}, 200),
        ("/offers/{source}/{offer_id}/retry", "/offers/pageup/nosuch/retry", {}, 409),
        ("/offers/{source}/{offer_id}/skip", "/offers/pageup/1002/skip", {}, 422),
        ("/offers/{source}/{offer_id}/skip", "/offers/pageup/1002/skip", {"reason": "dup"}, 200),
        ("/runs/now", "/runs/now", {}, 200),
        ("/inbox/{item_id}/retry", "/inbox/7/retry", {}, 409),
        ("/jobs/retry", "/jobs/retry", {}, 409),
        ("/maps/{target}/check", "/maps/hris/check", {"candidate": "fields:\n  a: x(\n"}, 422),
        ("/maps/{target}/apply", "/maps/hris/apply", {"candidate": "fields: {a: {const: 1}}\n"},
         200),
        ("/maps/{target}/rollback", "/maps/hris/rollback", {"version": "nope"}, 422),
        ("/maps/{target}/preview", "/maps/hris/preview", {}, 422),
    ]  # fmt: skip
    for documented, real, body, status in posts:
        answer = client.post("/console/api" + real, json=body, headers=headers)
        assert answer.status_code == status, (real, answer.text)
        check_response(spec, documented, "post", status, answer.json())
    refused = client.post("/console/api/runs/now", json={})
    check_response(spec, "/runs/now", "post", 403, refused.json())
    assert rig.reloads == [1]


def test_the_support_bundle_through_the_api(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.sign_in("ada")
    spec = rig.client.get("/console/api/openapi.json").json()
    headers = {"x-csrf-token": rig.csrf()}
    bad = rig.client.post("/console/api/support-bundle", json={"since": "soon"}, headers=headers)
    check_response(spec, "/support-bundle", "post", 422, bad.json())
    good = rig.client.post("/console/api/support-bundle", json={"since": "1d"}, headers=headers)
    assert good.status_code == 200 and good.content[:2] == b"PK"
    assert (
        "application/zip" in spec["paths"]["/support-bundle"]["post"]["responses"]["200"]["content"]
    )
