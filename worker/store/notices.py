"""Notices to HR users, and their sending on each channel: recorded once, sent once.

A notice is written with one ``notice_sends`` row per channel it goes to. The notifier takes a
channel's lease (``notice_channels``), sends every notice waiting there as one digest, and
marks them sent in one statement; a channel that failed waits ``next_attempt_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update

from worker.store.db import as_utc, as_utc_or_none, upsert_into
from worker.store.tables import notice_channels, notice_sends, notices


@dataclass(frozen=True, slots=True)
class Notice:
    """One stuck hire (or halted source), in plain words."""

    kind: str  # offer, push, job, source
    source: str
    subject: str | None
    target: str | None
    position: str | None
    start_date: str | None
    problem: str
    action: str
    created_at: datetime
    repeat_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewNotice:
    notice: Notice
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Waiting:
    """A notice waiting on a channel."""

    id: int
    notice: Notice


@dataclass(frozen=True, slots=True)
class ChannelState:
    channel: str
    failures: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_sent_at: datetime | None
    waiting: int = 0


class NoticeStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, batch: Sequence[NewNotice], repeat_within: timedelta) -> list[NewNotice]:
        """Record notices; one whose ``repeat_key`` was recorded within ``repeat_within`` is
        left out (a source halting at every run is told once). Returns those recorded."""
        kept: list[NewNotice] = []
        n = notices.c
        with self._engine.begin() as conn:
            for new in batch:
                notice = new.notice
                if notice.repeat_key is not None:
                    since = notice.created_at - repeat_within
                    seen = conn.execute(
                        select(n.id).where(n.repeat_key == notice.repeat_key,
                                           n.created_at >= since).limit(1)
                    ).first()  # fmt: skip
                    if seen is not None:
                        continue
                inserted = conn.execute(insert(notices).values(**asdict(notice)))
                notice_id = inserted.inserted_primary_key[0]  # type: ignore[index]
                if new.channels:
                    conn.execute(insert(notice_sends), [
                        {"notice_id": notice_id, "channel": channel,
                         "created_at": notice.created_at}
                        for channel in new.channels
                    ])  # fmt: skip
                kept.append(new)
        return kept

    def first_waiting(self, channel: str) -> datetime | None:
        """When the oldest notice still waiting on ``channel`` was recorded."""
        s = notice_sends.c
        with self._engine.connect() as conn:
            first = conn.execute(
                select(func.min(s.created_at)).where(s.channel == channel, s.sent_at.is_(None))
            ).scalar()
        return as_utc_or_none(first)

    def waiting(self, channel: str) -> list[Waiting]:
        s, n = notice_sends.c, notices.c
        query = (
            select(notices)
            .join(notice_sends, s.notice_id == n.id)
            .where(s.channel == channel, s.sent_at.is_(None))
            .order_by(n.created_at, n.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Waiting(row.id, _notice(row)) for row in rows]

    def ensure_channels(self, channels: Sequence[str]) -> None:
        if not channels:
            return
        statement = upsert_into(self._engine, notice_channels).on_conflict_do_nothing()
        with self._engine.begin() as conn:
            conn.execute(statement, [{"channel": name, "failures": 0} for name in channels])

    def claim(self, channel: str, owner: str, now: datetime, lease: timedelta) -> int | None:
        """Take the channel's lease when it is free and not backing off; returns its failures
        in a row so far, or None when it was not taken."""
        c = notice_channels.c
        free = or_(c.lease_until.is_(None), c.lease_until < now, c.lease_owner == owner)
        due = or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now)
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(notice_channels)
                .where(c.channel == channel, free, due)
                .values(lease_owner=owner, lease_until=now + lease)
            ).rowcount
            if not taken:
                return None
            return int(conn.execute(select(c.failures).where(c.channel == channel)).scalar() or 0)

    def mark_sent(self, channel: str, ids: Sequence[int], owner: str, now: datetime) -> None:
        s, c = notice_sends.c, notice_channels.c
        with self._engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(
                    update(notice_sends)
                    .where(s.channel == channel, s.notice_id.in_(ids[start : start + 500]),
                           s.sent_at.is_(None))
                    .values(sent_at=now)
                )  # fmt: skip
            conn.execute(
                update(notice_channels)
                .where(c.channel == channel, c.lease_owner == owner)
                .values(failures=0, next_attempt_at=None, last_error=None, last_sent_at=now,
                        lease_owner=None, lease_until=None)
            )  # fmt: skip

    def mark_failed(self, channel: str, owner: str, error: str, next_attempt_at: datetime) -> int:
        """Record a failed send; returns the channel's failures in a row."""
        c = notice_channels.c
        with self._engine.begin() as conn:
            conn.execute(
                update(notice_channels)
                .where(c.channel == channel, c.lease_owner == owner)
                .values(failures=c.failures + 1, next_attempt_at=next_attempt_at,
                        last_error=error, lease_owner=None, lease_until=None)
            )  # fmt: skip
            failures = conn.execute(select(c.failures).where(c.channel == channel)).scalar()
        return int(failures or 0)

    def release(self, channel: str, owner: str) -> None:
        c = notice_channels.c
        with self._engine.begin() as conn:
            conn.execute(
                update(notice_channels)
                .where(c.channel == channel, c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def channels(self) -> list[ChannelState]:
        c, s = notice_channels.c, notice_sends.c
        with self._engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    select(s.channel, func.count()).where(s.sent_at.is_(None)).group_by(s.channel)
                ).all()
            )
            rows = conn.execute(select(notice_channels).order_by(c.channel)).all()
        return [
            ChannelState(row.channel, row.failures, as_utc_or_none(row.next_attempt_at),
                         row.last_error, as_utc_or_none(row.last_sent_at),
                         int(counts.get(row.channel, 0)))
            for row in rows
        ]  # fmt: skip

    def recent(self, limit: int = 50) -> list[tuple[int, Notice, dict[str, datetime | None]]]:
        """The latest notices, each with its channels and when it was sent there."""
        n, s = notices.c, notice_sends.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(notices).order_by(n.created_at.desc(), n.id.desc())
                                .limit(limit)).all()  # fmt: skip
            ids = [row.id for row in rows]
            sends = conn.execute(
                select(s.notice_id, s.channel, s.sent_at).where(s.notice_id.in_(ids))
            ).all()
        by_notice: dict[int, dict[str, datetime | None]] = {}
        for notice_id, channel, sent_at in sends:
            by_notice.setdefault(notice_id, {})[channel] = as_utc_or_none(sent_at)
        return [(row.id, _notice(row), by_notice.get(row.id, {})) for row in rows]

    def purge(self, older_than: datetime) -> int:
        """Delete notices recorded before ``older_than``, sent or not (stale either way)."""
        n, s = notices.c, notice_sends.c
        old = select(n.id).where(n.created_at < older_than)
        with self._engine.begin() as conn:
            ids = list(conn.execute(old).scalars())
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(delete(notice_sends).where(s.notice_id.in_(chunk)))
                conn.execute(delete(notices).where(n.id.in_(chunk)))
        return len(ids)


def _notice(row: Any) -> Notice:
    return Notice(
        kind=row.kind, source=row.source, subject=row.subject, target=row.target,
        position=row.position, start_date=row.start_date, problem=row.problem,
        action=row.action, created_at=as_utc(row.created_at), repeat_key=row.repeat_key,
    )  # fmt: skip
