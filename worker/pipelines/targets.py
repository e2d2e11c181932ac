"""Sending one step of a field map to its target: the upsert look-up, then create or update."""

from __future__ import annotations

from typing import Any

import structlog

from worker.mapping.engine import fill_path
from worker.mapping.loader import FieldMap, Step
from worker.sinks.http import Delivered, HttpSink

log = structlog.get_logger(__name__)


async def send_step(
    sink: HttpSink,
    field_map: FieldMap,
    step: Step,
    context: Any,
    payload: Any,
    idempotency_key: str,
) -> Delivered:
    """Create the step's record, or update the one its ``find`` look-up returns.

    Expressions in paths see the source document (with ``steps``), the step's ``payload`` and,
    for the update path, the found record's ``id``.
    """
    stage = "post" if not field_map.multi_step else f"post:{step.name}"
    scope = {**context, "payload": payload} if isinstance(context, dict) else {"payload": payload}
    if step.find is not None:
        url = sink.url_for(fill_path(field_map, step.find.path, scope))
        route = sink.route_for(step.find.path.text)
        found = await sink.look_up(url, step.find.id_expression, route=route, stage=f"{stage}:find")
        if found is not None:
            target = fill_path(field_map, step.find.update_path, {**scope, "id": found})
            delivered = await sink.deliver(
                payload,
                f"{idempotency_key}:update",
                method=step.find.update_method,
                url=sink.url_for(target),
                route=sink.route_for(step.find.update_path.text),
                stage=f"{stage}:update",
                accept=step.accept,
                options=field_map.options,
            )
            log.info("record_found_and_updated", step=step.name, hris_id=found)
            return Delivered(found, delivered.status, updated=True)
    create_url = sink.url_for(fill_path(field_map, step.path, scope)) if step.path else None
    return await sink.deliver(
        payload,
        idempotency_key,
        method=step.method,
        url=create_url,
        route=sink.route_for(step.path.text if step.path else None),
        record_id=step.record_id,
        stage=stage,
        accept=step.accept,
        options=field_map.options,
    )
