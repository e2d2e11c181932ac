"""The offer list's query parameters, validated (a bad value is ignored, not an error page)."""

from __future__ import annotations

from collections.abc import Mapping

from worker.store.browse import OfferFilter

STATUSES = ("pending", "posting", "posted", "failed", "processed", "skipped")


def offer_filter(params: Mapping[str, str]) -> tuple[OfferFilter, int]:
    """``source``, ``status``, ``stage``, ``target``, ``parked`` (yes/no), ``q`` (an offer id,
    or its beginning with a trailing *) and ``page``."""
    status = params.get("status") or None
    parked = {"yes": True, "no": False}.get(params.get("parked") or "")
    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    wanted = OfferFilter(
        source=(params.get("source") or None),
        status=status if status in STATUSES else None,
        stage=(params.get("stage") or None),
        target=(params.get("target") or None),
        parked=parked,
        offer_id=(params.get("q") or "").strip()[:64] or None,
    )
    return wanted, page
