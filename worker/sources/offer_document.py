"""One offer's source document (offer, new-starter form, application form), fetched from PageUp
and checked to be about the offer that was asked for.

Nothing fetched is trusted: a PageUp that answers ``GET /offers/1`` with offer 2's document would
otherwise send offer 2's person to the HRIS under offer 1, and mark offer 1 processed without
ever delivering it. Each document's ids are compared with what was asked for (where the
document names them; paths in ``pageup.document_ids``), and each must have the shape the maps
read. A mismatch is a PermanentError naming both ids: the offer parks, nothing is posted.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import jmespath

from worker.errors import PermanentError
from worker.settings import DocumentIdPaths
from worker.sources.pageup import SYSTEM, OfferRef, PageUpClient, reference_id

_ANSWER_KEYS = ("Answers", "answers", "Questions", "questions")


class Problem(NamedTuple):
    """What is wrong with a document, and the record ids the text names (not personal data)."""

    text: str
    ids: tuple[str, ...] = ()


class DocumentChecks:
    """Where each document names the records it is about (compiled once)."""

    def __init__(self, paths: DocumentIdPaths) -> None:
        self.offer = jmespath.compile(paths.offer)
        self.onboarding_offer = jmespath.compile(paths.onboarding_offer)
        self.application = jmespath.compile(paths.application)
        self.applicant_in_offer = jmespath.compile(paths.applicant_in_offer)
        self.applicant_in_application = jmespath.compile(paths.applicant_in_application)
        self.paths = paths

    def offer_problem(self, offer: Any, offer_id: str) -> Problem | None:
        if not isinstance(offer, dict):
            return Problem(f"the offer document is {describe(offer)}, not an object")
        named = reference_id(self.offer.search(offer))
        if named is None:
            return Problem(f"the offer document does not name its offer id ({self.paths.offer})")
        if named != offer_id:
            text = f"asked for offer {offer_id}, PageUp answered with offer {named}'s document"
            return Problem(text, (offer_id, named))
        return None

    def onboarding_problem(self, form: Any, offer_id: str) -> Problem | None:
        if (problem := form_shape_problem("new-starter form", form)) is not None:
            return problem
        named = reference_id(self.onboarding_offer.search(form))
        if named is not None and named != offer_id:
            text = f"asked for offer {offer_id}'s new-starter form, got offer {named}'s"
            return Problem(text, (offer_id, named))
        return None

    def application_problem(self, form: Any, application_id: str, offer: Any) -> Problem | None:
        if (problem := form_shape_problem("application form", form)) is not None:
            return problem
        named = reference_id(self.application.search(form))
        if named is not None and named != application_id:
            text = f"asked for application {application_id}'s form, got application {named}'s"
            return Problem(text, (application_id, named))
        in_offer = reference_id(self.applicant_in_offer.search(offer))
        in_form = reference_id(self.applicant_in_application.search(form))
        if in_offer is not None and in_form is not None and in_offer != in_form:
            text = (
                f"the offer is about applicant {in_offer}, its application form about "
                f"applicant {in_form}"
            )
            return Problem(text, (in_offer, in_form))
        return None


def form_shape_problem(what: str, form: Any) -> Problem | None:
    """A form is an object; its answers, when present, a list of objects."""
    if not isinstance(form, dict):
        return Problem(f"the {what} is {describe(form)}, not an object")
    for key in _ANSWER_KEYS:
        if key in form:
            answers = form[key]
            if not isinstance(answers, list):
                return Problem(f"the {what}'s {key} is {describe(answers)}, not a list")
            if not all(isinstance(item, dict) for item in answers):
                return Problem(f"the {what}'s {key} holds something other than question objects")
    return None


def describe(value: Any) -> str:
    """The JSON type of a value, never the value itself (it may be personal data)."""
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, list):
        return f"a JSON array of {len(value)}"
    return "a JSON object"


def _refused(stage: str, problem: Problem) -> PermanentError:
    return PermanentError(problem.text, system=SYSTEM, stage=stage, record_ids=problem.ids)


async def fetch_document(
    pageup: PageUpClient, ref: OfferRef, checks: DocumentChecks
) -> dict[str, Any]:
    """The source document of ``ref``: offer, new-starter form and application form, fetched
    together and checked; PermanentError names what does not belong to the offer."""
    offer_id = ref.offer_id
    if ref.application_id is not None:
        offer, onboarding, application = await asyncio.gather(
            pageup.get_offer(offer_id),
            pageup.get_onboarding_form(offer_id),
            pageup.get_application_form(ref.application_id),
        )
    else:
        offer, onboarding = await asyncio.gather(
            pageup.get_offer(offer_id), pageup.get_onboarding_form(offer_id)
        )
        application = None
    if (problem := checks.offer_problem(offer, offer_id)) is not None:
        raise _refused("fetch_offer", problem)
    application_id = _application_id(pageup, ref, offer)
    if application is None:
        application = await pageup.get_application_form(application_id)
    if (problem := checks.onboarding_problem(onboarding, offer_id)) is not None:
        raise _refused("fetch_onboarding_form", problem)
    if (problem := checks.application_problem(application, application_id, offer)) is not None:
        raise _refused("fetch_application_form", problem)
    return {"offer": offer, "onboarding": onboarding, "application": application}


def _application_id(pageup: PageUpClient, ref: OfferRef, offer: Any) -> str:
    """The listing's application id, which the offer must not contradict; else the offer's."""
    in_offer = pageup.application_id_of(offer)
    if ref.application_id is not None:
        if in_offer is not None and in_offer != ref.application_id:
            text = (
                f"the offers list names application {ref.application_id} for offer "
                f"{ref.offer_id}, the offer itself application {in_offer}"
            )
            raise _refused(
                "fetch_offer", Problem(text, (ref.application_id, ref.offer_id, in_offer))
            )
        return ref.application_id
    if in_offer is None:
        text = (
            "neither the offers list nor the offer gives an application id "
            "(setting pageup.application_id_path)"
        )
        raise _refused("fetch_application_form", Problem(text))
    return in_offer


async def preview_document(
    pageup: PageUpClient, offer_id: str, checks: DocumentChecks
) -> dict[str, Any]:
    """The source document of one offer, for a preview: fetches only, writes nothing."""
    ref = OfferRef(offer_id, None)
    offer = await pageup.get_offer(offer_id)
    if pageup.application_id_of(offer) is None:
        listing = await pageup.list_offers()
        ref = next((r for r in listing.offers if r.offer_id == offer_id), ref)
    return await fetch_document(pageup, ref, checks)
