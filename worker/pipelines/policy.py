"""Decisions about failures, as pure functions: retry later, park, or stop the run."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.errors import (
    DeliveryError,
    HirebridgeError,
    MappingError,
    PermanentError,
    RateLimitedError,
)
from worker.settings import SyncSettings

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # an id's shape: an email or a phrase is not kept


@dataclass(frozen=True, slots=True)
class Retry:
    park: bool
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class FailureFacts:
    """What every failure record, log line and alert says about an exception."""

    stage: str
    kind: str
    message: str
    status: int | None
    system: str | None


def failure_facts(exc: Exception, stage: str, redact: Callable[[str], str]) -> FailureFacts:
    """A remote error's own stage wins; a bug is named by its type only (its text may hold
    data); every message goes through ``redact``."""
    remote = exc if isinstance(exc, DeliveryError) else None
    ours = exc if isinstance(exc, HirebridgeError) else None
    text = str(exc) if ours else type(exc).__name__
    return FailureFacts(
        stage=(remote.stage if remote and remote.stage else None) or stage,
        kind=exc.kind if isinstance(exc, HirebridgeError) else "internal",
        message=redact_keeping(text, redact, ours.record_ids if ours else ()),
        status=remote.status if remote else None,
        system=remote.system if remote else None,
    )


def redact_keeping(text: str, redact: Callable[[str], str], ids: tuple[str, ...]) -> str:
    """``redact(text)``, except that the record ids named on purpose stay readable."""
    ordered = sorted({i for i in ids if _ID.fullmatch(i)}, key=len, reverse=True)
    if not ordered:
        return redact(text)
    for index, value in enumerate(ordered):
        text = text.replace(value, f"\x00{index}\x00")
    text = redact(text)
    for index, value in enumerate(ordered):
        text = text.replace(f"\x00{index}\x00", value)
    return text


def credentials_refused(exc: Exception) -> bool:
    """The remote refused us, not the record: every offer would fail the same way."""
    return isinstance(exc, DeliveryError) and (
        exc.stage == "token" or (isinstance(exc, PermanentError) and exc.status in (401, 403))
    )


def after_failure(
    exc: Exception, *, attempts: int, settings: SyncSettings, now: datetime, rng: random.Random
) -> Retry:
    """Park permanent failures and offers out of attempts; otherwise back off exponentially."""
    permanent = isinstance(exc, MappingError | PermanentError) and not credentials_refused(exc)
    if permanent or attempts >= settings.max_attempts:
        return Retry(park=True, next_attempt_at=None)
    delay = min(
        settings.retry_backoff_max_seconds,
        settings.retry_backoff_initial_seconds * 2 ** max(0, attempts - 1),
    )
    delay *= 1 + rng.random() / 2  # jitter, so a burst of failures does not retry in lockstep
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        delay = max(delay, exc.retry_after)
    return Retry(park=False, next_attempt_at=now + timedelta(seconds=delay))


class CircuitBreaker:
    """Trips when ``threshold`` offers in a row fail transiently on the same system.

    With a ``cooldown`` it also stays open that long once tripped (or once the system refused
    our credentials), and then lets the next offer through to try again: a target that rests
    does not stop the others, and comes back by itself."""

    def __init__(
        self, threshold: int, cooldown: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._in_a_row: Counter[str] = Counter()
        self._open_until = 0.0
        self.reason: str | None = None

    def failed(self, exc: Exception) -> bool:
        """Record a failure; True when the breaker trips for the failing system."""
        if not isinstance(exc, DeliveryError) or isinstance(exc, PermanentError):
            return False
        self._in_a_row[exc.system] += 1
        if self._in_a_row[exc.system] >= self._threshold:
            self.open(f"{self._threshold} offers in a row failed: {exc}")
            return True
        return False

    def open(self, reason: str) -> None:
        self._open_until = self._clock() + self._cooldown
        self.reason = reason

    def resting_for(self) -> float:
        """Seconds left before the next try is allowed (0: closed)."""
        return max(0.0, self._open_until - self._clock())

    def succeeded(self) -> None:
        self._in_a_row.clear()
        self._open_until = 0.0
        self.reason = None
