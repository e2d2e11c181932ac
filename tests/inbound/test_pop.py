"""The POP Engine account config string: what we generate, and what --check finds wrong."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.inbound.conftest import POP_AUTH, inbound_settings
from worker.errors import PermanentError
from worker.inbound.pop import PopEngineClient, build_config, check_config
from worker.settings import PopEngineSettings
from worker.simulators import pop_engine
from worker.simulators.server import BackgroundServer

SETTINGS = inbound_settings(pop={"notify_headers": {"X-Partner": "hb-secret-header"}})


def test_the_generated_config_checks_clean_and_names_our_url() -> None:
    config = build_config(SETTINGS, show_secret=True)
    assert config.startswith(
        "ver|1|url|https://hirebridge.example.com/inbound/pop/[___APP_ID___]|ext_notify|yes|"
        f"auth|{POP_AUTH}|not_method|1|http_err|401,429,500,502,503,504"
    )
    assert config.endswith("not_headers|X-Partner,hb-secret-header")
    report = check_config(config, SETTINGS)
    assert report.problems == []
    assert ("not_method", "1", "notifies by POST") in report.meanings
    assert ("auth", "(hidden)", "sent as HTTP Basic credentials (base64 of this string)") in (
        report.meanings
    )


def test_without_show_secret_the_secrets_are_placeholders() -> None:
    config = build_config(SETTINGS, show_secret=False)
    assert POP_AUTH not in config and "hb-secret-header" not in config
    assert "auth|<pop.auth>" in config


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("ver|1|url", "3 pipe-separated parts"),
        ("ver|2|colour|red", "ver: '2', only version 1 is known"),
        ("ver|1|colour|red", "colour: unknown key"),
        ("url|https://elsewhere.example.com/notify", "url: we serve https://hirebridge.example.com/"),
        ("url|http://hirebridge.example.com/inbound/pop", "url: not https"),
        ("http_err|500,502", "http_err: lacks 401, 429, 503, 504"),
        ("auth|someone:else", "auth: does not match pop.auth"),
        ("ext_notify|no", "ext_notify: not 'yes'"),
        ("not_headers|X-Partner;other|not_sep|;", "not_headers: X-Partner is missing or differs"),
        ("ver|1", "url: missing"),
    ],
)  # fmt: skip
def test_check_names_what_is_wrong(config: str, problem: str) -> None:
    report = check_config(config, SETTINGS)
    assert any(problem in p for p in report.problems), report.problems


def test_a_method_we_refuse_is_flagged() -> None:
    settings = inbound_settings(pop={"methods": ["POST", "PATCH"]})
    report = check_config("not_method|2", settings)
    assert any("not_method: the engine would GET, which pop.methods refuses" in p
               for p in report.problems)  # fmt: skip


def test_appended_and_substituted_urls_are_both_understood() -> None:
    for url in ("https://hirebridge.example.com/inbound/pop",
                "https://hirebridge.example.com/inbound/pop/[___APP_ID___]"):  # fmt: skip
        problems = check_config(f"url|{url}", SETTINGS).problems
        assert not any(p.startswith("url:") for p in problems), problems


def score_with(state: pop_engine.PopEngineState, application_id: str, **settings: Any) -> Any:
    with BackgroundServer(pop_engine.build_app(state)) as server:
        engine = PopEngineSettings(
            api_url=f"{server.url}/api/1.0",
            username=state.username,
            password=settings.get("password", state.password),
            retry={"attempts": 1},
        )

        async def go() -> Any:
            async with httpx.AsyncClient() as client:
                return await PopEngineClient(engine, client).score(application_id)

        return asyncio.run(go())


def test_score_calc_get_returns_the_applications_score() -> None:
    state = pop_engine.PopEngineState()
    state.scores["10013810"] = {"score": 71.5, "score_final": 72, "score_text": "Recommended"}
    score = score_with(state, "10013810")
    assert (score.score, score.score_final, score.score_text) == (71.5, 72, "Recommended")
    assert state.calls["score_calc_get"] == 1


def test_an_engine_error_code_is_a_permanent_error_with_its_text() -> None:
    with pytest.raises(PermanentError, match="error_code 3: application not found"):
        score_with(pop_engine.PopEngineState(), "404")
    with pytest.raises(PermanentError, match="HTTP 401"):
        score_with(pop_engine.PopEngineState(), "1", password="wrong")
