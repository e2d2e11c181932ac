"""An admin's decisions about offers: the parked list, retry (and reroute), skip. Each is kept
with who, when and why in ``manual_actions``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select, update

from worker.store.ledger import Ledger, OfferState, Status
from worker.store.tables import manual_actions, offer_targets, offers


@dataclass(frozen=True, slots=True)
class OfferKey:
    source: str
    offer_id: str


class Interventions:
    """Works on the offers of every source in ``ledger``'s database."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def parked(
        self, limit: int = 1000, *, source: str | None = None, target: str | None = None
    ) -> Sequence[OfferState]:
        """Offers parked as a whole, or waiting on a parked target."""
        return self._ledger.unfinished(limit, source=source, target=target, parked_only=True)

    def resolve(self, offer_id: str, source: str | None) -> list[OfferKey]:
        """The offers an id names (one per source that has it, or the one asked for)."""
        return [OfferKey(o.source, o.offer_id) for o in self._ledger.find(offer_id, source)]

    def retry(
        self,
        keys: Sequence[OfferKey],
        *,
        actor: str,
        reason: str | None,
        target: str | None = None,
        reroute: bool = False,
    ) -> list[OfferKey]:
        """Un-park (or un-skip) offers, or one target of theirs, so the next run tries them
        again, attempts reset. ``reroute``: forget the targets chosen but not yet posted, so
        the routes decide again (those that accepted the offer keep it). Returns those found."""
        found = []
        now = datetime.now(UTC)
        with self._ledger.engine.begin() as conn:
            for key in keys:
                o = offers.c
                result = conn.execute(
                    update(offers)
                    .where(
                        o.source == key.source,
                        o.offer_id == key.offer_id,
                        o.status != Status.PROCESSED.value,
                    )
                    .values(
                        parked_at=None,
                        next_attempt_at=None,
                        attempts=0,
                        # the timeline starts again; the attempts before stay in offer_attempts
                        claimed_at=None,
                        fetched_at=None,
                        mapped_at=None,
                        updated_at=now,
                        status=Status.PENDING.value,
                        **({"routed_at": None} if reroute else {}),
                    )
                )
                if not result.rowcount:
                    continue
                t = offer_targets.c
                mine = (t.source == key.source, t.offer_id == key.offer_id)
                if reroute:
                    unposted = t.status != Status.POSTED.value
                    conn.execute(delete(offer_targets).where(*mine, unposted))
                which = (t.target == target,) if target is not None else ()
                conn.execute(
                    update(offer_targets)
                    .where(*mine, *which, t.status != Status.POSTED.value)
                    .values(parked_at=None, next_attempt_at=None, attempts=0, updated_at=now)
                )
                found.append(key)
                action = "reroute" if reroute else "retry"
                self._audit(conn, key, action, actor, reason, target)
        return found

    def skip(self, key: OfferKey, *, actor: str, reason: str, marked: bool) -> bool:
        """Record an admin's decision to leave an offer alone (and whether PageUp was told)."""
        with self._ledger.engine.begin() as conn:
            now = datetime.now(UTC)
            o = offers.c
            result = conn.execute(
                update(offers)
                .where(
                    o.source == key.source,
                    o.offer_id == key.offer_id,
                    o.status != Status.PROCESSED.value,
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
            self._audit(conn, key, "skip_and_mark" if marked else "skip", actor, reason, None)
        return True

    def note(
        self, key: OfferKey, action: str, *, actor: str, reason: str | None, target: str | None
    ) -> None:
        """Keep an admin's action that changed nothing here (``retry --documents``)."""
        with self._ledger.engine.begin() as conn:
            self._audit(conn, key, action, actor, reason, target)

    def _audit(
        self,
        conn: Connection,
        key: OfferKey,
        action: str,
        actor: str,
        reason: str | None,
        target: str | None,
    ) -> None:
        conn.execute(
            insert(manual_actions).values(
                source=key.source,
                offer_id=key.offer_id,
                target=target,
                action=action,
                actor=actor,
                reason=reason,
                at=datetime.now(UTC),
            )
        )

    def actions(self, key: OfferKey) -> list[dict[str, object]]:
        m = manual_actions.c
        with self._ledger.engine.connect() as conn:
            rows = conn.execute(
                select(manual_actions)
                .where(m.source == key.source, m.offer_id == key.offer_id)
                .order_by(m.id)
            ).all()
        return [dict(row._mapping) for row in rows]
