"""A PageUp tenant the offers come from (``sources``, or the single ``pageup`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from worker.settings.applications import APPLICATION_SCOPE, ApplicationsSettings
from worker.settings.common import RetrySettings, Section
from worker.settings.service import ScheduleSettings


class PageUpPaths(Section):
    """Endpoint paths under the API root. Only ``/offers`` is published; the rest are ASSUMED."""

    offers: str = "offers"
    offer: str = "offers/{offer_id}"
    onboarding_form: str = "offers/{offer_id}/onboardingform"
    application_form: str = "applications/{application_id}/applicationForm"
    mark_processed: str = "offers/{offer_id}/process"
    # A document's download link, by its PUReferenceID (the guide names "GET .../document/{id}").
    document: str = "document/{document_id}"
    # The applications flow (the guide's workflow 1). The guide names these three endpoints;
    # ASSUMED: that {job_id} takes an sExternalJobID as it takes an lJobID, and the replies' shapes.
    job_applications: str = "jobs/{job_id}/applications"
    external_job_applications: str = "jobs/{job_id}/applications"
    applicant: str = "applicants/{applicant_id}"


class PagingSettings(Section):
    """How the offers list pages, if it does (PageUp publishes nothing about paging).

    The run collects every page *before* marking anything processed, so offset paging is safe.
    With ``read_ahead`` above 1, numbered pages are asked that many at a time once the first is
    full (see worker/sources/paging.py): a long queue's first offer no longer waits for every
    page one after another, for at most ``read_ahead - 1`` pages asked past its end. Off by
    default: PageUp does not say how it answers a page past the end (an empty page is fine;
    an error would be recorded in the PageUp error log on every run).
    """

    mode: Literal["none", "page_number", "next_link"] = "none"
    page_param: str = "page"
    size_param: str = "pageSize"
    page_size: int = Field(100, ge=1)
    first_page: int = 1
    next_link_path: str = "Paging.Next"
    max_pages: int = Field(1000, ge=1)
    read_ahead: int = Field(1, ge=1, le=16)


class DocumentIdPaths(Section):
    """Where each fetched document names the records it is about (JMESPath), so that a document
    about another offer, application or applicant is refused instead of delivered."""

    offer: str = "PUReferenceID"  # in the offer: must equal the offer asked for
    onboarding_offer: str = "PUReferenceID"  # in the new-starter form: checked when present
    application: str = "PUReferenceID"  # in the application form: checked when present
    # The applicant, compared when both the offer and the application form name one.
    applicant_in_offer: str = "Applicant.PUReferenceID"
    applicant_in_application: str = "ApplicantInfo.PUReferenceID || Applicant.PUReferenceID"


class PageUpSettings(Section):
    environment: Literal["live", "uat"] = "uat"
    data_centre: Literal["dc2", "dc3", "dc4", "dc5"] = "dc2"
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] = ["Public.Offer.Read", "Public.Offer.Write", "Public.Application.Read"]
    api_base_url: str | None = None
    token_url: str | None = None
    paths: PageUpPaths = PageUpPaths()
    paging: PagingSettings = PagingSettings()
    offer_action_type_id: int | None = None
    offer_id_path: str = "PUReferenceID"
    application_id_path: str = "Applications.PUReferenceID"
    document_ids: DocumentIdPaths = DocumentIdPaths()
    list_items_path: str | None = None
    # Where the document endpoint's JSON reply holds the download link (JMESPath). ASSUMED: the
    # reply's shape is not published.
    document_url_path: str = "Url || url || DownloadUrl || downloadUrl"
    retry: RetrySettings = RetrySettings()
    retry_after_cap_seconds: float = Field(120.0, gt=0)
    token_refresh_margin_seconds: float = Field(30.0, ge=0)
    # The applications flow of this tenant (off unless enabled).
    applications: ApplicationsSettings = ApplicationsSettings()

    @property
    def requested_scopes(self) -> list[str]:
        """``scopes``, plus Public.Application.Read when the applications flow is on."""
        extra = self.applications.enabled and APPLICATION_SCOPE not in self.scopes
        return [*self.scopes, APPLICATION_SCOPE] if extra else list(self.scopes)

    @property
    def resolved_api_base_url(self) -> str:
        if self.api_base_url:
            return self.api_base_url.rstrip("/") + "/"
        env = "api" if self.environment == "live" else "apiuat"
        root = f"https://{env}.{self.data_centre}.pageuppeople.com"
        return f"{root}/v3/{self.tenant_id}/recruitment/hire/"

    @property
    def resolved_token_url(self) -> str:
        if self.token_url:
            return self.token_url
        env = "login" if self.environment == "live" else "loginuat"
        return f"https://{env}.{self.data_centre}.pageuppeople.com/connect/token"


class SourceSettings(PageUpSettings):
    """One PageUp tenant (a ``sources`` entry; the ``pageup`` section is the single-source form).

    ``schedule`` and ``concurrency`` default to ``service.schedule`` and ``sync.concurrency``.
    """

    schedule: ScheduleSettings | None = None
    # Offers of this source processed at once by one worker (its budget: no tenant can take
    # every lane). None: sync.concurrency.
    concurrency: int | None = Field(None, ge=1, le=256)
