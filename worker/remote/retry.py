"""Retrying one remote call inside a run: exponential backoff with jitter, Retry-After honoured.

Only RetriableError is retried. A 429 without a usable Retry-After is not retried here: PageUp's
limit is daily, so hammering it cannot help; the caller backs off for the run and alerts.
"""

from __future__ import annotations

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


def _should_retry(exc: BaseException) -> bool:
    if isinstance(exc, RateLimitedError):
        return exc.retry_after is not None
    return isinstance(exc, RetriableError)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetrySettings) -> T:
    """Run ``call`` until it succeeds, fails permanently, or ``policy.attempts`` run out."""
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
            log.warning(
                "remote_call_retry",
                system=exc.system,
                stage=exc.stage,
                status=exc.status,
                error=str(exc),
                attempt=state.attempt_number,
                wait_seconds=round(state.upcoming_sleep, 3),
            )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(_should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )
    result: T = await retrying(call)
    return result
