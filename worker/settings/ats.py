"""Job postings kept in step with an ATS through its ERP Integration API."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from worker.settings.common import AuthSettings, RetrySettings, Section


class JobSourceSettings(Section):
    """Where the organisation's own job records come from."""

    type: Literal["http", "directory"] = "directory"
    # http: GET url (auth and headers as for the HRIS); items_path finds the list in the reply.
    url: str | None = None
    auth: AuthSettings = AuthSettings()
    headers: dict[str, str] = {}
    items_path: str = "@"
    retry: RetrySettings = RetrySettings()
    # directory: every *.json (an object, or a list of them) and *.csv (a header row) in it.
    directory: Path | None = None
    # The field of each record that identifies it in the source (never changes).
    id_field: str = "id"


class AtsSettings(Section):
    """Job postings kept in step with an ATS through its ERP Integration API."""

    enabled: bool = False
    base_url: str = "https://ats.example.com/recruitment/integration/erp/"
    api_key: SecretStr | None = None
    api_key_in: Literal["header", "query"] = "header"
    source_name: str = "hirebridge"
    mapping: Path = Path("mappings/ats_jobs.yaml")
    source: JobSourceSettings = JobSourceSettings()
    interval_seconds: float = Field(900.0, gt=0)
    # A job that leaves the source is updated to close_status (null: left as it is).
    close_status: Literal["CLOSED", "ARCHIVED"] | None = "CLOSED"
    # Refuse to close more than this share of the open jobs in one run (an emptied export, a
    # wrong folder): the run halts and alerts instead. 1.0 turns the guard off.
    max_close_fraction: float = Field(0.5, gt=0, le=1)
    # Where a 409 JOB_EXISTS reply names the existing job (JMESPath over its body).
    conflict_job_id_path: str = "data.job_id"
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        problems = []
        if self.enabled and self.api_key is None:
            problems.append("enabled needs api_key")
        if self.enabled and self.source.type == "http" and not self.source.url:
            problems.append("source.url is needed for an http source")
        if self.enabled and self.source.type == "directory" and self.source.directory is None:
            problems.append("source.directory is needed for a directory source")
        if problems:
            raise ValueError("; ".join(problems))
        return self
