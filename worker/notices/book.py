"""Recording notices: one more consumer of the failure facts the pipelines produce.

A pipeline that parks a record (or halts a source) tells the ``NoticeBook`` in one call, beside
its Sentry alert. The book words it for HR users (``worker.notices.wording``), names the hire
only by its offer id, position and start date (read from the source document the pipeline
already holds, when it holds one), and queues the row for the store's thread: nothing is sent
from here, and a failure to record never reaches the pipeline. The notifier
(``worker.notices.notifier``) sends what was recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jmespath
import structlog
from sqlalchemy import Engine

from worker import metrics
from worker.errors import DeliveryError, PermanentError, RateLimitedError
from worker.notices.wording import (
    Wording,
    application_wording,
    halt_wording,
    job_wording,
    offer_wording,
    push_wording,
)
from worker.pipelines.policy import FailureFacts
from worker.redact import scrub_text
from worker.settings import NotificationSettings
from worker.store.ledger import Failure
from worker.store.notices import NewNotice, Notice, NoticeStore
from worker.store.spool import Spool
from worker.store.thread import StoreThread

log = structlog.get_logger(__name__)
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ].*)?$")
_POSITION_CHARS = 120


class NoticeBook:
    def __init__(
        self, engine: Engine, store: StoreThread, settings: NotificationSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.notices = NoticeStore(engine)
        self._settings = settings
        self._clock = clock
        self._position = jmespath.compile(settings.position_path)
        self._start_date = jmespath.compile(settings.start_date_path)
        self._spool: Spool[NewNotice] = Spool(store, self._write, name="notices")

    # -- what the pipelines call (one line each) ---------------------------------------------

    def offer_parked(
        self, source: str, offer_id: str, target: str | None, failure: Failure, exc: Exception,
        document: Any = None,
    ) -> None:  # fmt: skip
        """An offer (or one of its targets) failed; noticed only when it is parked. The
        ledger's ``failure`` has its message scrubbed already; ``exc`` only names the system."""
        if not failure.park:
            return
        remote = exc if isinstance(exc, DeliveryError) else None
        wording = offer_wording(
            stage=failure.stage, kind=failure.kind, message=failure.message,
            status=failure.http_status, system=remote.system if remote else None, target=target,
        )  # fmt: skip
        position, start = self.hire_of(document)
        self._add("offer", source, wording, subject=offer_id, target=target,
                  position=position, start_date=start)  # fmt: skip

    def push_parked(self, source: str, item_id: int, facts: FailureFacts, parked: bool) -> None:
        if parked:
            wording = push_wording(source=source, item_id=item_id, message=facts.message)
            self._add("push", source, wording, subject=str(item_id))

    def job_parked(self, source_id: str, facts: FailureFacts, parked: bool) -> None:
        if parked:
            wording = job_wording(source_id=source_id, message=facts.message)
            self._add("job", "ats", wording, subject=source_id)

    def application_parked(
        self, source: str, application_id: str, target: str, facts: FailureFacts, parked: bool,
        *, job_id: str,
    ) -> None:  # fmt: skip
        """An application parked at a target; named by its id and job only."""
        if parked:
            wording = application_wording(application_id=application_id, job_id=job_id,
                                          target=target, message=facts.message)  # fmt: skip
            self._add("application", source, wording, subject=application_id, target=target)

    def source_halted(self, source: str, reason: str, exc: Exception | None) -> None:
        """A source's run stopped early; told once per cause within halt_repeat_hours."""
        cause = _halt_cause(exc)
        wording = halt_wording(source=source, cause=cause, reason=scrub_text(reason))
        self._add("source", source, wording, repeat_key=f"halt:{source}:{cause}")

    # -- the rest ---------------------------------------------------------------------------

    def hire_of(self, document: Any) -> tuple[str | None, str | None]:
        """The position and start date in ``document``; nothing else of it is kept."""
        if not isinstance(document, dict):
            return None, None
        position = _text(self._search(self._position, document))
        start = _text(self._search(self._start_date, document))
        match = _DATE.match(start or "")
        shown = scrub_text(position)[:_POSITION_CHARS] if position else None
        return shown, match[1] if match else None

    @staticmethod
    def _search(expression: Any, document: Any) -> Any:
        try:
            return expression.search(document)
        except jmespath.exceptions.JMESPathError:
            return None

    def channels_for(self, kind: str, source: str) -> tuple[str, ...]:
        return tuple(
            name
            for name, channel in self._settings.channels.items()
            if channel.enabled
            and kind in channel.kinds
            and (
                not channel.sources
                or kind not in ("offer", "source", "application")
                or source in channel.sources
            )
        )

    def _add(
        self, kind: str, source: str, wording: Wording, *, subject: str | None = None,
        target: str | None = None, position: str | None = None, start_date: str | None = None,
        repeat_key: str | None = None,
    ) -> None:  # fmt: skip
        channels = self.channels_for(kind, source)
        if not channels:
            return
        notice = Notice(kind, source, subject, target, position, start_date, wording.problem,
                        wording.action, self._clock(), repeat_key)  # fmt: skip
        self._spool.add(NewNotice(notice, channels))

    def _write(self, batch: list[NewNotice]) -> None:
        repeat = timedelta(hours=self._settings.halt_repeat_hours)
        kept = self.notices.add(batch, repeat)
        for new in kept:
            metrics.NOTICES.labels(new.notice.kind).inc()
        log.info("notices_recorded", count=len(kept), repeats_left_out=len(batch) - len(kept))

    def purge(self) -> int:
        """Delete notices past notifications.retention_days (runs on the store's thread)."""
        days = self._settings.retention_days
        purged = self.notices.purge(self._clock() - timedelta(days=days))
        if purged:
            log.info("notices_purged", count=purged, older_than_days=days)
        return purged

    async def drain(self) -> None:
        await self._spool.drain()


def _halt_cause(exc: Exception | None) -> str:
    """Why a source halted, in the three causes HR users are told apart. A token endpoint
    that is down or rate-limited is not a refusal of the credentials."""
    if isinstance(exc, RateLimitedError):
        return "rate_limit"
    if isinstance(exc, PermanentError) and (exc.stage == "token" or exc.status in (401, 403)):
        return "credentials"
    return "unavailable"


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None
