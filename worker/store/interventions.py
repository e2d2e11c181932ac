"""An admin's decisions about offers: the parked list, retry, skip. Each is kept with who,
when and why in ``manual_actions``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, case, insert, select, update

from worker.store.ledger import Ledger, OfferState, Status, offer_key, state_from_row
from worker.store.tables import manual_actions, offers


class Interventions:
    """Works on the same tenant and database as ``ledger``."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def parked(self, limit: int = 1000) -> Sequence[OfferState]:
        with self._ledger.engine.connect() as conn:
            rows = conn.execute(
                select(offers)
                .where(offers.c.tenant == self._ledger.tenant, offers.c.parked_at.is_not(None))
                .order_by(offers.c.parked_at)
                .limit(limit)
            ).all()
        return [state_from_row(row) for row in rows]

    def retry(self, offer_ids: Sequence[str], *, actor: str, reason: str | None) -> list[str]:
        """Un-park (or un-skip) offers so the next run tries them; returns the ids found."""
        found = []
        with self._ledger.engine.begin() as conn:
            for offer_id in offer_ids:
                result = conn.execute(
                    update(offers)
                    .where(
                        *offer_key(self._ledger.tenant, offer_id),
                        offers.c.status != Status.PROCESSED.value,
                    )
                    .values(
                        parked_at=None,
                        next_attempt_at=None,
                        attempts=0,
                        updated_at=datetime.now(UTC),
                        status=case(
                            (offers.c.status == Status.SKIPPED.value, Status.PENDING.value),
                            else_=offers.c.status,
                        ),
                    )
                )
                if result.rowcount:
                    found.append(offer_id)
                    self._audit(conn, offer_id, "retry", actor, reason)
        return found

    def skip(self, offer_id: str, *, actor: str, reason: str, marked: bool) -> bool:
        """Record an admin's decision to leave an offer alone (and whether PageUp was told)."""
        with self._ledger.engine.begin() as conn:
            now = datetime.now(UTC)
            result = conn.execute(
                update(offers)
                .where(
                    *offer_key(self._ledger.tenant, offer_id),
                    offers.c.status != Status.PROCESSED.value,
                )
                .values(
                    status=Status.PROCESSED.value if marked else Status.SKIPPED.value,
                    processed_at=now if marked else None,
                    parked_at=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
            )
            if not result.rowcount:
                return False
            self._audit(conn, offer_id, "skip_and_mark" if marked else "skip", actor, reason)
        return True

    def _audit(
        self, conn: Connection, offer_id: str, action: str, actor: str, reason: str | None
    ) -> None:
        conn.execute(
            insert(manual_actions).values(
                tenant=self._ledger.tenant,
                offer_id=offer_id,
                action=action,
                actor=actor,
                reason=reason,
                at=datetime.now(UTC),
            )
        )

    def actions(self, offer_id: str) -> list[dict[str, object]]:
        with self._ledger.engine.connect() as conn:
            rows = conn.execute(
                select(manual_actions)
                .where(
                    manual_actions.c.tenant == self._ledger.tenant,
                    manual_actions.c.offer_id == offer_id,
                )
                .order_by(manual_actions.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]
