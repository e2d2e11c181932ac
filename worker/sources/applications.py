"""A job's applications from PageUp (the guide's workflow 1), each fetched with its applicant
and its application form, and checked to be about the records asked for.

    GET jobs/{jobId}/applications              every page (the source's paging settings)
    GET applicants/{ApplicantInfo.PUReferenceID}
    GET applications/{ApplicationInfo.PUReferenceID}/applicationForm

Nothing fetched is trusted, as for offers: a list entry naming another job, an applicant
document about another applicant, or a form about another application is refused with both
ids named, and nothing of it is delivered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import jmespath

from worker.errors import PermanentError
from worker.settings.applications import ApplicationIdPaths
from worker.sources.offer_document import DocumentChecks, Problem, describe, form_shape_problem
from worker.sources.pageup import SYSTEM, PageUpClient, reference_id


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job whose applications are read: its lJobID, or its sExternalJobID (``external``)."""

    job_id: str
    external: bool = False

    @property
    def key(self) -> str:
        """How the ledger and the commands name it: ``3001``, or ``ext:REQ-77``."""
        return f"ext:{self.job_id}" if self.external else self.job_id


@dataclass(frozen=True, slots=True)
class ApplicationRef:
    """One entry of a job's applications list."""

    application_id: str
    applicant_id: str
    entry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApplicationListing:
    """A job's applications, and the entries that could not be read (where, and why)."""

    applications: list[ApplicationRef]
    invalid: list[str]

    @property
    def complete(self) -> bool:
        """Every entry was read: only then can an application missing from it be gone."""
        return not self.invalid


class ApplicationChecks:
    """Where each document names its records (compiled once)."""

    def __init__(self, ids: ApplicationIdPaths, documents: DocumentChecks) -> None:
        self.application = jmespath.compile(ids.application)
        self.applicant = jmespath.compile(ids.applicant)
        self.job = jmespath.compile(ids.job)
        self.in_applicant = jmespath.compile(ids.in_applicant)
        self.ids = ids
        self.documents = documents

    def listing(self, pages: list[list[Any]], job: JobRef) -> ApplicationListing:
        refs: list[ApplicationRef] = []
        invalid: list[str] = []
        seen: set[str] = set()
        for page_number, entries in enumerate(pages, start=1):
            for index, entry in enumerate(entries, start=1):
                where = f"job {job.key} page {page_number} entry {index}"
                ref, problem = self._ref(entry, job)
                if problem is not None:
                    invalid.append(f"{where}: {problem}")
                elif ref is not None and ref.application_id not in seen:
                    seen.add(ref.application_id)
                    refs.append(ref)
        return ApplicationListing(refs, invalid)

    def _ref(self, entry: Any, job: JobRef) -> tuple[ApplicationRef | None, str | None]:
        if not isinstance(entry, dict):
            return None, f"{describe(entry)}, not an object"
        application_id = reference_id(self.application.search(entry))
        if application_id is None:
            return None, f"no application id at {self.ids.application}"
        applicant_id = reference_id(self.applicant.search(entry))
        if applicant_id is None:
            return None, f"application {application_id}: no applicant id at {self.ids.applicant}"
        named_job = reference_id(self.job.search(entry))
        if not job.external and named_job is not None and named_job != job.job_id:
            return None, f"application {application_id} is listed under job {named_job}"
        return ApplicationRef(application_id, applicant_id, entry), None

    def applicant_problem(self, applicant: Any, applicant_id: str) -> Problem | None:
        if not isinstance(applicant, dict):
            return Problem(f"the applicant document is {describe(applicant)}, not an object")
        named = reference_id(self.in_applicant.search(applicant))
        if named is None:
            text = (
                f"the applicant document does not name its applicant id ({self.ids.in_applicant})"
            )
            return Problem(text)
        if named != applicant_id:
            text = f"asked for applicant {applicant_id}, PageUp answered with applicant {named}'s"
            return Problem(text, (applicant_id, named))
        return None

    def form_problem(self, form: Any, ref: ApplicationRef) -> Problem | None:
        if (problem := form_shape_problem("application form", form)) is not None:
            return problem
        checks = self.documents
        named = reference_id(checks.application.search(form))
        if named is not None and named != ref.application_id:
            text = f"asked for application {ref.application_id}'s form, got application {named}'s"
            return Problem(text, (ref.application_id, named))
        applicant = reference_id(checks.applicant_in_application.search(form))
        if applicant is not None and applicant != ref.applicant_id:
            text = (
                f"application {ref.application_id} is listed for applicant {ref.applicant_id}, "
                f"its form names applicant {applicant}"
            )
            return Problem(text, (ref.application_id, ref.applicant_id, applicant))
        return None


async def fetch_application(
    pageup: PageUpClient, job: JobRef, ref: ApplicationRef, checks: ApplicationChecks
) -> dict[str, Any]:
    """The document an applications map sees: ``job``, ``application`` (the list entry),
    ``applicant`` and ``application_form``; PermanentError names what does not belong."""
    applicant, form = await asyncio.gather(
        pageup.get_applicant(ref.applicant_id), pageup.get_application_form(ref.application_id)
    )
    if (problem := checks.applicant_problem(applicant, ref.applicant_id)) is not None:
        raise PermanentError(problem.text, system=SYSTEM, stage="fetch_applicant",
                             record_ids=problem.ids)  # fmt: skip
    if (problem := checks.form_problem(form, ref)) is not None:
        raise PermanentError(problem.text, system=SYSTEM, stage="fetch_application_form",
                             record_ids=problem.ids)  # fmt: skip
    return {
        "job": {"id": job.job_id, "external": job.external},
        "application": ref.entry,
        "applicant": applicant,
        "application_form": form,
    }
