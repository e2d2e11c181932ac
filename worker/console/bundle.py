"""The support bundle for PageUp support, downloaded by an admin (``hirebridge support-bundle``'s
own ``bundle_bytes``); the download is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from worker.console.actions import audit
from worker.console.auth import Identity
from worker.console.context import ConsoleContext
from worker.errors import ConfigError
from worker.store.interventions import OfferKey
from worker.support.bundle import bundle_bytes, parse_since


async def download(ctx: ConsoleContext, who: Identity, form: Any) -> Response:
    settings = ctx.settings()
    source = str(form.get("source") or "") or None
    try:
        since = parse_since(str(form.get("since") or "7d"))
        data = await ctx.run(
            bundle_bytes, settings, ctx.engine, sources=[source] if source else (), since=since
        )
    except ConfigError as exc:
        return JSONResponse({"error": "; ".join(exc.problems)}, 422)
    await audit(ctx, who, OfferKey(source or "*", "support-bundle"), "support_bundle")
    name = f"hirebridge-support-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
