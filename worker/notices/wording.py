"""Failure facts in the words an HR admin acts on: what is wrong, and what to do.

Pure functions over what the pipelines already know of a failure (stage, kind, the scrubbed
message, HTTP status, the remote system). The message is the one stored in the ledger, already
scrubbed of personal data; nothing else of the record is read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Where a map expression reads: the parts of the source document, in HR words.
_PARTS = {
    "onboarding": "the new-starter form",
    "application": "the application form",
    "offer": "the offer",
}
_REQUIRED = re.compile(
    r"^(?:step '[^']*': )?field '(?P<field>[^']+)': required, but (?P<expr>.+) gave no value$"
)
_FIELD = re.compile(r"^(?:step '[^']*': )?field '(?P<field>[^']+)': (?P<rest>.+)$")
_QUESTION_TEXT = re.compile(r"answer(?:_object)?\(\s*(\w+)\s*,\s*'([^']+)'")
_PART = re.compile(r"\b(onboarding|application|offer)\b")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_HTTP = re.compile(r"^HTTP \d{3}(?:: |$)")


@dataclass(frozen=True, slots=True)
class Wording:
    problem: str
    action: str


def retry_hint() -> str:
    # No id here: hires with the same problem share one line of advice in a digest.
    return "then retry it (`hirebridge retry <offer id>`, or from the console)"


def offer_wording(
    *, stage: str, kind: str, message: str, status: int | None, system: str | None,
    target: str | None,
) -> Wording:  # fmt: skip
    """Why an offer is parked, and what to do about it."""
    retry = retry_hint()
    message = _HTTP.sub("", message) or message  # the status is said in words below
    if kind == "mapping":
        return _mapping(message, retry)
    if stage == "mark_processed":
        return Wording(
            f"the hire reached its payroll, but PageUp did not take the mark 'processed': "
            f"{message}",
            f"Nothing will be sent twice: {retry} to mark it, or mark it in PageUp.",
        )
    if system == "pageup" or stage.startswith("fetch"):
        return _pageup(message, status, kind, retry)
    where = f"the payroll/HRIS “{target or system or 'target'}”"
    if status in (401, 403):
        return Wording(
            f"{where} refused hirebridge's credentials (HTTP {status})",
            f"An admin renews the credentials in hirebridge's settings, {retry}.",
        )
    if kind == "permanent":
        return Wording(
            f"{where} refused this hire: {message}",
            f"Correct the value in PageUp, or ask an admin to correct the field map; {retry}.",
        )
    if kind in ("retriable", "rate_limited"):
        return Wording(
            f"{where} did not accept this hire after several tries: {message}",
            f"Check with its administrators that it is up; {retry}.",
        )
    return Wording(
        f"hirebridge failed while sending this hire ({message})",
        f"Report it to your hirebridge administrators; {retry}.",
    )


def _mapping(message: str, retry: str) -> Wording:
    if message.startswith("no route"):
        return Wording(
            f"no route sends this hire to a payroll ({message.removeprefix('no route: ')})",
            f"Check the hire's details in PageUp, or ask an admin to add a route; {retry}.",
        )
    if "is no longer configured" in message:
        return Wording(message, f"Ask an admin to configure it again or reroute the hire; {retry}.")
    sentences, parts = [], set()
    for problem in message.split("; "):
        sentence, part = _field_problem(problem)
        sentences.append(sentence)
        if part:
            parts.add(part)
    where = " or ".join(sorted(parts)) or "the hire's forms"
    return Wording(
        "; ".join(sentences),
        f"Ask the new starter or HR to complete {where} in PageUp; {retry}.",
    )


def _field_problem(problem: str) -> tuple[str, str | None]:
    """One field's problem as a sentence, and the part of the forms it reads."""
    if match := _REQUIRED.match(problem):
        what, part = _described(match["field"], match["expr"])
        return f"{part or 'the hire'} has no {what}", part
    if match := _FIELD.match(problem):
        what, part = _described(match["field"], match["rest"])
        reason = match["rest"].split(" failed: ", 1)[-1]
        return f"the {what} in {part or 'the hire'} cannot be used: {reason}", part
    return problem, None


def _described(field: str, expression: str) -> tuple[str, str | None]:
    """``tax.taxFileNumber`` read from ``answer(onboarding, `11`)`` → ("tax file number",
    "the new-starter form"); a question asked by its text names itself."""
    if match := _QUESTION_TEXT.search(expression):
        return match[2].strip().lower(), _PARTS.get(match[1])
    last = field.rsplit(".", 1)[-1]
    words = _CAMEL.sub(" ", last).replace("_", " ").lower()
    part = _PART.search(expression)
    return words, _PARTS.get(part[1]) if part else None


def _pageup(message: str, status: int | None, kind: str, retry: str) -> Wording:
    if status == 404:
        return Wording(
            f"PageUp has no such document for this offer (HTTP 404: {message})",
            f"Check the offer in PageUp: withdrawn offers are skipped "
            f"(`hirebridge skip`); otherwise {retry}.",
        )
    if kind == "permanent" and status is None:
        return Wording(
            f"PageUp sent something hirebridge cannot use: {message}",
            f"Send PageUp support the bundle (`hirebridge support-bundle`); {retry}.",
        )
    if kind == "permanent":
        return Wording(
            f"PageUp refused to give this offer (HTTP {status}): {message}",
            f"Check the offer in PageUp and hirebridge's PageUp permissions; {retry}.",
        )
    return Wording(
        f"PageUp did not answer for this offer after several tries: {message}",
        f"Nothing to correct in the hire; {retry} once PageUp answers again.",
    )


def push_wording(*, source: str, item_id: int, message: str) -> Wording:
    what = {"apna": "An Apna candidate lead", "pop": "A POP Engine assessment"}.get(
        source, f"A {source} push"
    )
    return Wording(
        f"{what} (inbox item {item_id}) could not be delivered: {message}",
        f"Correct it (the sender or the field map), then `hirebridge inbox-retry {item_id}`.",
    )


def job_wording(*, source_id: str, message: str) -> Wording:
    return Wording(
        f"The job posting {source_id} could not be sent to the ATS: {message}",
        "Correct the job record or the field map, then `hirebridge jobs retry --all-parked`.",
    )


def application_wording(*, application_id: str, job_id: str, target: str, message: str) -> Wording:
    """An application of a job could not reach a target (pre-boarding, background checks...)."""
    return Wording(
        f"Application {application_id} (job {job_id}) could not be sent to {target}: {message}",
        "Correct it in PageUp or correct the applications map, then "
        "`hirebridge applications retry <application id> --source <source>`.",
    )


def halt_wording(*, source: str, cause: str, reason: str) -> Wording:
    """A source's run stopped: no offer of it moves until the cause is gone."""
    if cause == "credentials":
        return Wording(
            f"PageUp refused hirebridge's credentials for {source}: no new hire moves",
            f"An admin renews the client secret (sources.{source}.client_secret) and reloads "
            "hirebridge; the hires then move by themselves.",
        )
    if cause == "rate_limit":
        return Wording(
            f"PageUp's daily call limit for {source} is reached: new hires wait",
            "Nothing to do: they move once PageUp allows calls again. If it happens often, ask "
            "an admin to sync less often or ask PageUp for a higher limit.",
        )
    return Wording(
        f"PageUp could not be read for {source}: new hires wait ({reason})",
        "Nothing to correct in the hires: hirebridge tries again on its schedule. If it lasts, "
        "send PageUp support the bundle (`hirebridge support-bundle`).",
    )
