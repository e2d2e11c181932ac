"""The applications flow of a source (``sources.<name>.applications``): PageUp's first workflow,
"capture applicant and application form information", for the jobs it names."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from worker.settings.common import Section
from worker.settings.service import ScheduleSettings

APPLICATION_SCOPE = "Public.Application.Read"


class ApplicationIdPaths(Section):
    """Where each document names its records (JMESPath). ASSUMED: the guide names
    ``ApplicantInfo.PUReferenceID`` and ``ApplicationInfo.PUReferenceID`` in the list's
    entries; the rest is our guess, kept a setting."""

    # In an entry of GET jobs/{jobId}/applications: the application, its applicant, its job.
    application: str = "ApplicationInfo.PUReferenceID"
    applicant: str = "ApplicantInfo.PUReferenceID"
    job: str = "JobInfo.PUReferenceID"  # compared (when present) with an lJobID asked for
    # In GET applicants/{applicantId}: the applicant it is about (must equal the one asked for).
    in_applicant: str = "PUReferenceID || ApplicantInfo.PUReferenceID"


class ApplicationsSettings(Section):
    """Which jobs' applications go to which targets, and when."""

    enabled: bool = False
    # Jobs by PageUp's own job id (lJobID) and by the customer's id (sExternalJobID). An
    # explicit list (see README "Applications" for why not a JMESPath over another list).
    job_ids: list[str] = []
    external_job_ids: list[str] = []
    # The targets that take this source's applications; each needs an applications_mapping.
    targets: list[str] = []
    # When `hirebridge run` reads them; None: the source's schedule (else service.schedule).
    schedule: ScheduleSettings | None = None
    # Applications of one job fetched and delivered at once.
    concurrency: int = Field(4, ge=1, le=64)
    # JMESPath to the list inside the reply's envelope; null: a bare array, or the first of
    # Applications/Items/Data/Results holding one. Paging: the source's `paging` settings.
    list_items_path: str | None = None
    ids: ApplicationIdPaths = ApplicationIdPaths()

    @model_validator(mode="after")
    def _something_to_read(self) -> Self:
        if self.enabled and not (self.job_ids or self.external_job_ids):
            raise ValueError("give job_ids or external_job_ids (the jobs to read)")
        if self.enabled and not self.targets:
            raise ValueError("give targets (those that take the applications)")
        for job_id in [*self.job_ids, *self.external_job_ids]:
            if not job_id.strip() or "/" in job_id or len(job_id) > 64:
                raise ValueError(f"job id {job_id!r}: not an id (1-64 characters, no '/')")
        return self
