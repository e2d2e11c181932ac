"""Statements built once and run with bound parameters.

Building an SQLAlchemy statement (and its cache key) for every call cost more CPU than running
it: about 0.1 ms per ledger write and a third of an inbound push's CPU (py-spy, issue #13).
The hot writes of the offer sync and the inbox use these instead; values are always bound.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Update, and_, bindparam, case, exists, update

from worker.store.db import upsert_for
from worker.store.tables import inbox, offer_targets, offers


@functools.cache
def fenced_offer_update(columns: tuple[str, ...]) -> Update:
    """UPDATE offers SET <columns> for one offer, only while ``owner`` holds its lease.

    Parameters: ``k_source``, ``k_offer_id``, ``k_owner``, and ``v_<column>`` for each column.
    """
    o = offers.c
    return (
        update(offers)
        .where(
            o.source == bindparam("k_source"),
            o.offer_id == bindparam("k_offer_id"),
            o.lease_owner == bindparam("k_owner"),
        )
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


@functools.cache
def target_update(columns: tuple[str, ...], count_attempt: bool = False) -> Update:
    """UPDATE offer_targets SET <columns> (and attempts + 1) for one offer's target.

    Parameters: ``k_source``, ``k_offer_id``, ``k_target``, and ``v_<column>`` for each column.
    """
    t = offer_targets.c
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in columns}
    if count_attempt:
        values["attempts"] = t.attempts + 1
    return (
        update(offer_targets)
        .where(
            t.source == bindparam("k_source"),
            t.offer_id == bindparam("k_offer_id"),
            t.target == bindparam("k_target"),
        )
        .values(values)
    )


@functools.cache
def fenced_offer_posted() -> Update:
    """As a target's acceptance is written (before its own row, in the same transaction, so
    that the offer's row is locked first, as every other write does): UPDATE the offer's
    ``updated_at`` only while ``owner`` holds its lease, and, when no routed target but this
    one is left unposted, its status to 'posted'. Its own row then says that only the mark is
    left, which a claim re-checks under the row's lock (worker/store/due.py,
    ``untried``). One statement where the fence and the status took two.

    Parameters: ``k_source``, ``k_offer_id``, ``k_owner``, ``k_target``, ``v_updated_at``.
    """
    o, t = offers.c, offer_targets.c
    others_unposted = exists().where(
        t.source == o.source, t.offer_id == o.offer_id, t.target != bindparam("k_target"),
        t.status != "posted",
    )  # fmt: skip
    all_posted = and_(o.routed_at.is_not(None), ~others_unposted)
    return fenced_offer_update(("updated_at",)).values(
        status=case((all_posted, "posted"), else_=o.status),
        stage=case((all_posted, "mark_processed"), else_=o.stage),
    )


@functools.cache
def target_sending(dialect: str) -> Any:
    """A target about to be sent an offer: its row ``posting`` with the idempotency key,
    payload hash and map version, one attempt more (created if the route was chosen in the
    same transaction). One statement where an INSERT of the route's row and an UPDATE took two.

    Parameters: ``k_source``, ``k_offer_id``, ``k_target``, ``v_idempotency_key``,
    ``v_payload_hash``, ``v_mapping_version``, ``v_updated_at``.
    """
    statement = upsert_for(dialect, offer_targets).values(
        source=bindparam("k_source"), offer_id=bindparam("k_offer_id"),
        target=bindparam("k_target"), status="posting", stage="post", attempts=1,
        idempotency_key=bindparam("v_idempotency_key"),
        payload_hash=bindparam("v_payload_hash"),
        mapping_version=bindparam("v_mapping_version"), updated_at=bindparam("v_updated_at"),
    )  # fmt: skip
    sent = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[offer_targets.c.source, offer_targets.c.offer_id, offer_targets.c.target],
        set_={"status": sent.status, "stage": sent.stage,
              "idempotency_key": sent.idempotency_key, "payload_hash": sent.payload_hash,
              "mapping_version": sent.mapping_version, "updated_at": sent.updated_at,
              "attempts": offer_targets.c.attempts + 1},
    )  # fmt: skip


@functools.cache
def targets_routed(dialect: str) -> Any:
    """INSERT the offer_targets rows of an offer's route, leaving any that exist (a retry
    of a routed offer): rows of ``source``, ``offer_id``, ``target``, ``status``,
    ``attempts``, ``updated_at``."""
    return upsert_for(dialect, offer_targets).on_conflict_do_nothing()


def bound(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in values.items()}


@functools.cache
def inbox_add(dialect: str) -> Any:
    """Store a push, or count a repeat of it; returns its ``repeats``.

    Parameters: ``source``, ``dedup_key``, ``payload``, ``status``, ``now``.
    """
    return (
        upsert_for(dialect, inbox)
        .values(
            source=bindparam("source"),
            dedup_key=bindparam("dedup_key"),
            payload=bindparam("payload"),
            status=bindparam("status"),
            attempts=0,
            repeats=0,
            received_at=bindparam("now"),
            updated_at=bindparam("now"),
        )
        .on_conflict_do_update(
            index_elements=[inbox.c.source, inbox.c.dedup_key],
            set_={"repeats": inbox.c.repeats + 1},
        )
        .returning(inbox.c.repeats)
    )
