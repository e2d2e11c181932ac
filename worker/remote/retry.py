"""Retrying one remote call inside a run: exponential backoff with jitter, Retry-After honoured.

Only RetriableError is retried. A 429 without a usable Retry-After is not retried here: PageUp's
limit is daily, so hammering it cannot help; the caller backs off for the run and alerts.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from worker.errors import RateLimitedError, RetriableError
from worker.settings import RetrySettings

T = TypeVar("T")
log = structlog.get_logger(__name__)
# Which try of the innermost ``with_retries`` is running (1 outside any): for breadcrumbs.
_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("hirebridge_attempt", default=1)


def current_attempt() -> int:
    """The number of the try in progress of the innermost retried call (1 if none)."""
    return _attempt.get()


def _should_retry(exc: BaseException) -> bool:
    if isinstance(exc, RateLimitedError):
        return exc.retry_after is not None
    return isinstance(exc, RetriableError)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetrySettings) -> T:
    """Run ``call`` until it succeeds, fails permanently, or ``policy.attempts`` run out."""
    tries = 0

    async def numbered() -> T:
        nonlocal tries
        tries += 1
        token = _attempt.set(tries)
        try:
            return await call()
        finally:
            _attempt.reset(token)

    try:
        # The first try runs bare: building tenacity's machinery on every call costs more CPU
        # than the rest of a request's bookkeeping.
        return await numbered()
    except RetriableError as exc:
        if policy.attempts <= 1 or not _should_retry(exc):
            raise
        first_wait = _first_wait(exc, policy)
        _log_retry(exc, attempt=1, wait=first_wait)
        await asyncio.sleep(first_wait)
    backoff = wait_exponential_jitter(
        multiplier=policy.backoff_initial_seconds,
        max=policy.backoff_max_seconds,
        jitter=policy.backoff_initial_seconds,
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetriableError) and exc.retry_after is not None:
            return exc.retry_after
        return float(backoff(state))

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetriableError):
            _log_retry(exc, attempt=state.attempt_number + 1, wait=state.upcoming_sleep)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts - 1),
        wait=wait,
        retry=retry_if_exception(_should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )
    result: T = await retrying(numbered)
    return result


def _first_wait(exc: RetriableError, policy: RetrySettings) -> float:
    if exc.retry_after is not None:
        return exc.retry_after
    return policy.backoff_initial_seconds * (1 + random.random())


def _log_retry(exc: RetriableError, *, attempt: int, wait: float) -> None:
    log.warning(
        "remote_call_retry",
        system=exc.system,
        stage=exc.stage,
        status=exc.status,
        error=str(exc),
        attempt=attempt,
        wait_seconds=round(wait, 3),
    )
