"""The target account's own lists, compared with a field map's lookup tables (``check:``).

A list-backed field (BambooHR's department, HiBob's site ...) must carry one of the account's
options. The map's ``check`` section says where the account lists them; this GETs each one and
names every lookup value the account does not have, and every condition that does not hold
(a custom field that was never created), before the first hire is refused.
"""

from __future__ import annotations

from urllib.parse import urljoin

from worker.mapping.account_checks import check_problems
from worker.mapping.loader import FieldMap
from worker.remote.http import route_of
from worker.runtime import http_client
from worker.settings import Settings
from worker.sinks.http import HttpSink


async def account_problems(settings: Settings, target: str, field_map: FieldMap) -> list[str]:
    """Every mismatch between the map's ``check`` section and the target's live account."""
    problems: list[str] = []
    section = settings.targets[target]
    async with http_client(settings, 1) as client:
        sink = HttpSink(section, client, system=target)
        for check in field_map.checks:
            # Resolved like a link in a web page: "meta/lists" beside ".../v1/employees".
            url = urljoin(section.url, check.get)
            body = await sink.get_json(url, route=route_of(url), stage="check")
            if body is None:
                problems.append(f"GET {check.get}: the account answered 404 (not found)")
                continue
            problems += check_problems(check, body, field_map.lookups, field_map.options)
    return problems


async def account_lists(settings: Settings, target: str, field_map: FieldMap) -> str:
    """``hirebridge check``'s line: ok with what was compared, or every problem."""
    problems = await account_problems(settings, target, field_map)
    if problems:
        raise ValueError("; ".join(problems))
    tables = sum(len(check.lookups) for check in field_map.checks)
    conditions = sum(check.expect is not None for check in field_map.checks)
    return f"{tables} lookup tables and {conditions} conditions match the account"
