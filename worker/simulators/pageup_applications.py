"""The PageUp simulator's applications (the guide's workflow 1): jobs with applications,
their applicants and application forms. ASSUMED shapes (PageUp publishes the endpoints, not
the bodies): a list entry holds ``ApplicationInfo``, ``ApplicantInfo`` and ``JobInfo``, each
with its ``PUReferenceID``; a job is found by its lJobID or its sExternalJobID."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.simulators.sample import FIRST, LAST

STAGES = ["Applied", "Screening", "Interview", "Reference check"]
RIGHT_TO_WORK, EXPERIENCE = 31, 32


@dataclass
class SimJob:
    job_id: int
    external_id: str
    applications: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SimApplications:
    jobs: dict[str, SimJob] = field(default_factory=dict)
    applicants: dict[str, dict[str, Any]] = field(default_factory=dict)
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)
    # applicant id asked for -> the applicant served instead (a PageUp answering wrongly)
    misdirect_applicant: dict[str, str] = field(default_factory=dict)
    # job id -> a body served instead of its list (bad PageUp bodies)
    broken_lists: dict[str, Any] = field(default_factory=dict)
    # applicant id -> a body served instead of the applicant
    broken_applicants: dict[str, Any] = field(default_factory=dict)
    # next-link paging (ASSUMED shape): pages of this size in an envelope whose Paging.Next is
    # the next page's link, "absolute", "rooted" (/path?cursor=), "relative" (to the API base)
    # or "elsewhere" (on another host)
    link_page_size: int | None = None
    link_style: str = "absolute"

    def add_job(self, job_id: int, count: int, *, seed: int = 11, first_id: int = 800001) -> SimJob:
        """A job with ``count`` applications (and their applicants and forms)."""
        rng = random.Random(seed)
        job = SimJob(job_id, f"REQ-{job_id}")
        for index in range(count):
            application_id, applicant_id = first_id + index, first_id - 200000 + index
            job.applications.append({
                "ApplicationInfo": {"PUReferenceID": application_id, "Status": "Active",
                                    "Stage": rng.choice(STAGES),
                                    "SubmittedDate": f"2026-11-{1 + index % 28:02d}T09:00:00"},
                "ApplicantInfo": {"PUReferenceID": applicant_id},
                "JobInfo": {"PUReferenceID": job_id, "sExternalJobID": job.external_id},
            })  # fmt: skip
            first, last = rng.choice(FIRST), rng.choice(LAST)
            self.applicants[str(applicant_id)] = {
                "PUReferenceID": applicant_id, "FirstName": first, "LastName": last,
                "Email": f"{first.lower()}.{last.lower()}{index}@example.org",
                "Phone": f"04{rng.randrange(10**8):08d}",
            }  # fmt: skip
            self.forms[str(application_id)] = {
                "PUReferenceID": application_id,
                "ApplicantInfo": {"PUReferenceID": applicant_id},
                "Answers": [
                    {"QuestionID": RIGHT_TO_WORK, "Question": "Right to work in Australia",
                     "Answer": rng.choice(["Yes", "No"])},
                    {"QuestionID": EXPERIENCE, "Question": "Years of experience",
                     "Answer": rng.randrange(0, 20)},
                ],
            }  # fmt: skip
        self.jobs[str(job_id)] = job
        return job

    def job(self, wanted: str) -> SimJob | None:
        found = self.jobs.get(wanted)
        return found or next((j for j in self.jobs.values() if j.external_id == wanted), None)

    def entry(self, application_id: int) -> dict[str, Any]:
        for job in self.jobs.values():
            for entry in job.applications:
                if entry["ApplicationInfo"]["PUReferenceID"] == application_id:
                    return entry
        raise KeyError(application_id)


def _linked_page(
    sim: SimApplications, request: Request, entries: list[dict[str, Any]], wanted: str
) -> dict[str, Any]:
    """One page of a next-link list: ``cursor`` is where it starts."""
    assert sim.link_page_size is not None
    start = int(request.query_params.get("cursor", "0"))
    end = start + sim.link_page_size
    link = None
    if end < len(entries):
        link = {
            "absolute": str(request.url.replace(query=f"cursor={end}")),
            "rooted": f"{request.url.path}?cursor={end}",
            "relative": f"jobs/{wanted}/applications?cursor={end}",
            "elsewhere": f"https://elsewhere.example{request.url.path}?cursor={end}",
        }[sim.link_style]
    return {"Applications": entries[start:end], "Paging": {"Next": link}}


Handler = Callable[[Any, Request], Awaitable[Response]]
Errors = Callable[..., Response]


def application_routes(
    api: str, endpoint: Callable[[str, Handler], Any], errors: Errors
) -> list[Route]:
    """``GET jobs/{jobId}/applications`` (paged with ``page``/``pageSize`` when asked, or by
    next links when ``link_page_size`` is set) and
    ``GET applicants/{applicantId}``; application forms are served by the offers' route."""

    async def list_applications(state: Any, request: Request) -> Response:
        sim: SimApplications = state.applications
        wanted = request.path_params["job_id"]
        if wanted in sim.broken_lists:
            return JSONResponse(sim.broken_lists[wanted])
        job = sim.job(wanted)
        if job is None:
            return errors(404, "Job not found", field="jobId")
        entries = job.applications
        if sim.link_page_size is not None:
            return JSONResponse(_linked_page(sim, request, entries, wanted))
        if "page" in request.query_params:
            page = max(1, int(request.query_params["page"]))
            size = int(request.query_params.get("pageSize", "100"))
            entries = entries[(page - 1) * size : page * size]
        body: Any = {"Applications": entries, "Paging": {}} if state.faults.envelope else entries
        return JSONResponse(body)

    async def get_applicant(state: Any, request: Request) -> Response:
        sim: SimApplications = state.applications
        asked = request.path_params["applicant_id"]
        if asked in sim.broken_applicants:
            return JSONResponse(sim.broken_applicants[asked])
        applicant = sim.applicants.get(sim.misdirect_applicant.get(asked, asked))
        return JSONResponse(applicant) if applicant else errors(404, "Applicant not found")

    return [
        Route(f"{api}/jobs/{{job_id}}/applications",
              endpoint("list_applications", list_applications), methods=["GET"]),
        Route(f"{api}/applicants/{{applicant_id}}", endpoint("get_applicant", get_applicant),
              methods=["GET"]),
    ]  # fmt: skip
