"""The POP Engine: its partner account config string, its notifications, and its score API.

Facts (the vendor's partner API pages, ``shared/seeds/003_*`` and issue #6):
- the engine notifies ``url`` with the application id substituted for ``[___APP_ID___]`` or
  appended, by POST (``not_method`` 1), GET (2) or PATCH (anything else), with Basic auth made
  from the ``auth`` string, extra headers from ``not_headers`` (pairs split by ``not_sep``), and a
  JSON body when ``ext_notify`` is ``yes``;
- only 200 counts as delivered; no answer or a status in ``http_err`` is retried (every second
  for a minute, every minute for an hour, then daily); any other status drops the notification.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from worker.errors import PermanentError
from worker.remote.http import exchange, raise_for_status, route_of
from worker.remote.retry import with_retries
from worker.settings import InboundSettings, PopEngineSettings

APP_ID_FIELD = "[___APP_ID___]"
METHOD_CODES = {"POST": "1", "GET": "2", "PATCH": "3"}
KNOWN_KEYS = ("ver", "url", "ext_notify", "auth", "rdc", "cmp", "not_method", "not_headers",
              "not_sep", "http_err")  # fmt: skip
# What we answer when a notification cannot be stored (or is refused for a reason we may fix:
# credentials after a rotation, overload). These must be in http_err, or the engine drops it.
RETRY_STATUSES = (401, 429, 500, 502, 503, 504)
MAX_APP_ID = 2**63 - 1
# Matched against the whole text (fullmatch): "$" would also match before a final newline, and
# "123\n" would become a second dedup key for application 123.
_APP_ID = re.compile(r"[0-9]{1,19}")
# A report id is part of the dedup key: visible ASCII only, so that no variant of one id (a
# trailing newline, a space) makes a second key, and short enough for the key's column.
_REPORT_ID = re.compile(r"[!-~]{1,64}")


def valid_application_id(text: str) -> bool:
    return bool(_APP_ID.fullmatch(text)) and int(text) <= MAX_APP_ID


def valid_report_id(value: object) -> bool:
    """A notification's ``report_id``: a string or an integer, as the engine's ids are."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return bool(_REPORT_ID.fullmatch(str(value)))


def notify_url(inbound: InboundSettings) -> str:
    return f"{inbound.public_url.rstrip('/')}{inbound.pop.path.rstrip('/')}/{APP_ID_FIELD}"


def build_config(inbound: InboundSettings, *, show_secret: bool) -> str:
    """The account config string a POP Engine admin pastes for this deployment."""
    pop = inbound.pop
    auth = pop.auth.get_secret_value() if pop.auth is not None else ""
    method = "POST" if "POST" in pop.methods else pop.methods[0]
    pairs = [
        ("ver", "1"),
        ("url", notify_url(inbound)),
        ("ext_notify", "yes"),
        ("auth", auth if show_secret else "<pop.auth>"),
        ("not_method", METHOD_CODES[method]),
        ("http_err", ",".join(str(s) for s in RETRY_STATUSES)),
    ]
    if pop.notify_headers:
        values = [(k, v.get_secret_value() if show_secret else f"<{k}>")
                  for k, v in pop.notify_headers.items()]  # fmt: skip
        pairs.append(("not_headers", ",".join(part for pair in values for part in pair)))
    return "|".join(f"{key}|{value}" for key, value in pairs)


@dataclass
class ConfigReport:
    meanings: list[tuple[str, str, str]] = field(default_factory=list)  # key, value, meaning
    problems: list[str] = field(default_factory=list)


def check_config(text: str, inbound: InboundSettings) -> ConfigReport:
    """What a config string means, and what is wrong with it for this deployment."""
    report = ConfigReport()
    parts = text.strip().split("|")
    if len(parts) % 2:
        report.problems.append(
            f"{len(parts)} pipe-separated parts: expected key|value pairs (an even count)"
        )
        parts = parts[:-1]
    values: dict[str, str] = {}
    for key, value in zip(parts[::2], parts[1::2], strict=True):
        if key in values:
            report.problems.append(f"{key}: given twice")
        values[key] = value
        shown = "(hidden)" if key == "auth" else value
        if key not in KNOWN_KEYS:
            report.problems.append(f"{key}: unknown key (known: {', '.join(KNOWN_KEYS)})")
            report.meanings.append((key, shown, "unknown"))
            continue
        report.meanings.append((key, shown, _meaning(key, value, values)))
    _check_values(values, inbound, report.problems)
    return report


def _meaning(key: str, value: str, values: dict[str, str]) -> str:
    if key == "ver":
        return "config version"
    if key == "url":
        how = "substituted" if APP_ID_FIELD in value else "appended"
        return f"notification endpoint; the application id is {how}"
    if key == "ext_notify":
        return "JSON details in the body" if value == "yes" else "no details (only the id)"
    if key == "auth":
        return "sent as HTTP Basic credentials (base64 of this string)"
    if key == "not_method":
        return f"notifies by {method_of(value)}"
    if key == "not_headers":
        names = _header_pairs(value, values.get("not_sep", ","))
        return "extra headers: " + ", ".join(name for name, _ in names)
    if key == "http_err":
        return "statuses the engine retries (anything else but 200 is dropped)"
    return {"rdc": "score reducer", "cmp": "field encoding (ignored for partners)",
            "not_sep": "separator of not_headers"}[key]  # fmt: skip


def method_of(code: str) -> str:
    return {"1": "POST", "2": "GET"}.get(code, "PATCH")


def _header_pairs(value: str, sep: str) -> list[tuple[str, str]]:
    items = value.split(sep or ",")
    return list(zip(items[::2], items[1::2], strict=False))


def _check_values(values: dict[str, str], inbound: InboundSettings, problems: list[str]) -> None:
    pop = inbound.pop
    for key in ("ver", "url", "auth", "http_err"):
        if key not in values:
            problems.append(f"{key}: missing")
    if values.get("ver", "1") != "1":
        problems.append(f"ver: {values['ver']!r}, only version 1 is known")
    if "url" in values:
        _check_url(values["url"], inbound, problems)
    method = method_of(values.get("not_method", ""))
    if method not in pop.methods:
        problems.append(f"not_method: the engine would {method}, which pop.methods refuses")
    if values.get("ext_notify") != "yes":
        problems.append(
            "ext_notify: not 'yes': notifications carry no report id, so a second report for "
            "one application is taken for a repeat"
        )
    if "http_err" in values:
        given = {s.strip() for s in values["http_err"].split(",") if s.strip()}
        missing = [str(s) for s in RETRY_STATUSES if str(s) not in given]
        if missing:
            problems.append(
                f"http_err: lacks {', '.join(missing)}: we answer these when a notification "
                "cannot be stored or accepted now, and the engine would drop it for good"
            )
    if "auth" in values and pop.auth is not None and values["auth"] != pop.auth.get_secret_value():
        problems.append("auth: does not match pop.auth, so every notification would get a 401")
    headers = dict(_header_pairs(values.get("not_headers", ""), values.get("not_sep", ",")))
    for name, expected in pop.notify_headers.items():
        if headers.get(name) != expected.get_secret_value():
            problems.append(f"not_headers: {name} is missing or differs from pop.notify_headers")


def _check_url(url: str, inbound: InboundSettings, problems: list[str]) -> None:
    base = f"{inbound.public_url.rstrip('/')}{inbound.pop.path.rstrip('/')}"
    served = url.replace(APP_ID_FIELD, "1") if APP_ID_FIELD in url else url.rstrip("/") + "/1"
    if not served.startswith(base + "/") or served[len(base) + 1 :] != "1":
        problems.append(f"url: we serve {base}/<application id>, not {url}")
    if urlsplit(url).scheme != "https":
        problems.append("url: not https: credentials and candidate data would travel in clear")


@dataclass(frozen=True, slots=True)
class Score:
    score: Any
    score_final: Any
    score_text: Any


class PopEngineClient:
    """The engine's one-URL API (``{"command": ..., "partner_api": true}``, Basic auth)."""

    def __init__(self, settings: PopEngineSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        password = settings.password.get_secret_value() if settings.password else ""
        pair = f"{settings.username}:{password}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode()

    async def score(self, application_id: str) -> Score:
        body = {"command": "score_calc_get", "partner_api": True,
                "application_id": str(application_id)}  # fmt: skip

        async def once() -> Any:
            headers = {"Authorization": self._authorization, "Accept": "application/json"}
            reply = await exchange(
                self._client, "POST", self._settings.api_url, system="pop_engine",
                stage="score", route=route_of(self._settings.api_url),
                timeout=self._settings.retry.timeout_seconds,
                headers=headers, json_body=body,
            )  # fmt: skip
            raise_for_status(reply, success=frozenset({200}), retry_after_cap=300.0)
            return reply.json()

        data = await with_retries(once, self._settings.retry)
        if not isinstance(data, dict):
            raise PermanentError("score_calc_get: reply is not a JSON object",
                                 system="pop_engine", stage="score")  # fmt: skip
        code = data.get("error_code")
        if str(code) != "0":
            text = str(data.get("error_text") or "no error_text")[:200]
            raise PermanentError(f"score_calc_get: error_code {code}: {text}",
                                 system="pop_engine", stage="score")  # fmt: skip
        return Score(data.get("score"), data.get("score_final"), data.get("score_text"))
