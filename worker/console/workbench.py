"""The field-map workbench's requests, shared by the page and the API: preview an offer, try
a candidate, apply, roll back. Reveals, applies and rollbacks are audited."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile

from worker.console import maps
from worker.console.actions import audit
from worker.console.auth import Identity
from worker.console.context import ConsoleContext
from worker.errors import HirebridgeError
from worker.mapping.loader import load_field_map
from worker.store.interventions import OfferKey

MAX_MAP_BYTES = 512 * 1024


def _source(ctx: ConsoleContext, form: Any) -> str | None:
    sources = list(ctx.settings().sources)
    wanted = str(form.get("source") or "")
    if wanted in sources:
        return wanted
    return sources[0] if len(sources) == 1 else None


async def _reveal(ctx: ConsoleContext, who: Identity, form: Any, source: str, offer: str) -> bool:
    """An admin's reveal of personal values, kept in the audit trail; nobody else's."""
    if form.get("reveal") != "yes" or not who.may("admin"):
        return False
    await audit(ctx, who, OfferKey(source, offer), "reveal", reason="map preview")
    return True


async def preview(ctx: ConsoleContext, who: Identity, target: str, form: Any) -> dict[str, Any]:
    offer_id = str(form.get("offer_id") or "").strip()
    source = _source(ctx, form)
    if not offer_id or source is None:
        return {"error": "give an offer id (and its source when there are several)"}
    try:
        document = await maps.fetch(ctx, source, offer_id)
    except HirebridgeError as exc:
        return {"error": f"offer {offer_id}: {exc}", "source": source, "offer_id": offer_id}
    revealed = await _reveal(ctx, who, form, source, offer_id)
    result = maps.payloads(ctx, source, document, reveal=revealed)
    return {"source": source, "offer_id": offer_id, "revealed": revealed, **result}


async def _candidate_text(form: Any) -> str | None:
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_MAP_BYTES + 1)
        if len(raw) > MAX_MAP_BYTES:
            return None
        return raw.decode("utf-8", errors="replace")
    text = form.get("candidate")
    return text.replace("\r\n", "\n") if isinstance(text, str) and text.strip() else None


async def try_candidate(
    ctx: ConsoleContext, who: Identity, target: str, form: Any
) -> dict[str, Any]:
    """A candidate's problems (with their lines), its mapping tests, and for a chosen offer
    what it changes in the payload."""
    path = maps.map_path(ctx, target)
    text = await _candidate_text(form)
    if path is None or text is None:
        problem = "unknown target" if path is None else "paste or upload a map (512 KB at most)"
        return {"problems": [{"line": None, "problem": problem}], "lines": [], "tests": []}
    candidate, problems = maps.check_text(text, path)
    result: dict[str, Any] = {
        "problems": problems,
        "lines": text.splitlines(),
        "candidate": text,
        "marked": sorted({p["line"] for p in problems if p["line"]}),
        "tests": maps.tests(candidate) if candidate else [],
    }
    offer_id, source = str(form.get("offer_id") or "").strip(), _source(ctx, form)
    if candidate is not None and offer_id and source is not None:
        try:
            document = await maps.fetch(ctx, source, offer_id)
        except HirebridgeError as exc:
            result["diff"] = f"offer {offer_id}: {exc}"
        else:
            revealed = await _reveal(ctx, who, form, source, offer_id)
            current = load_field_map(path)
            result["diff"] = maps.payload_diff(current, candidate, document, reveal=revealed)
    return result


async def apply_candidate(
    ctx: ConsoleContext, who: Identity, target: str, form: Any
) -> dict[str, Any]:
    text = await _candidate_text(form)
    if text is None:
        return {
            "applied": False,
            "problems": [{"line": None, "problem": "no map given"}],
            "lines": [],
            "marked": [],
        }
    result = await maps.apply(ctx, target, text)
    result["lines"], result["candidate"] = text.splitlines(), text
    result["marked"] = sorted({p["line"] for p in result["problems"] if p["line"]})
    if result["applied"]:
        await audit(
            ctx,
            who,
            OfferKey(target, "map"),
            "map_apply",
            reason=f"version {result['version']}",
            target=target,
        )
    return result


async def rollback(ctx: ConsoleContext, who: Identity, target: str, form: Any) -> dict[str, Any]:
    version = str(form.get("version") or "")
    result = await maps.rollback(ctx, target, version)
    result.setdefault("marked", [])
    if result["applied"]:
        await audit(
            ctx,
            who,
            OfferKey(target, "map"),
            "map_rollback",
            reason=f"back to {version}",
            target=target,
        )
    return result
