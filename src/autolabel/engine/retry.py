"""Transport retries: tenacity, exponential backoff with jitter, honouring Retry-After.

Only :class:`TransientProviderError` is retried. An invalid *answer* is not a
transport failure; the labeler re-asks for it separately (bounded).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from autolabel.errors import ProviderError, TransientProviderError

T = TypeVar("T")


class _WaitHonouringRetryAfter:
    """Wait at least what the server asked for; otherwise back off exponentially."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._backoff = wait_exponential_jitter(initial=initial, max=maximum, jitter=initial)
        self._maximum = maximum

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # A server's Retry-After is a floor, capped so a bogus header cannot stall a run.
            return min(max(float(retry_after), 0.0), max(self._maximum, 120.0))
        return backoff


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    initial_wait: float = 0.5,
    max_wait: float = 30.0,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> tuple[T, int]:
    """Run ``call`` with retries; returns (result, attempts). Re-raises the last error.

    A :class:`ProviderError` that escapes carries ``attempts``: the calls actually made,
    so a failure reason can say how hard it tried.
    """
    attempts = 1
    try:
        # Fast path: most calls succeed at once, so tenacity is only built after a failure.
        return await call(), 1
    except TransientProviderError as exc:
        if max_retries == 0:
            exc.attempts = attempts
            raise
        first = exc
    except ProviderError as exc:
        exc.attempts = attempts
        raise
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientProviderError),
        stop=stop_after_attempt(max_retries),
        wait=_WaitHonouringRetryAfter(initial_wait, max_wait),
        reraise=True,
        before_sleep=on_retry,
    )
    try:
        # The first failure's Retry-After is honoured before the first retry.
        await asyncio.sleep(retrying.wait(_state_after(first)))  # type: ignore[arg-type]
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number + 1
                result = await call()
    except ProviderError as exc:
        exc.attempts = attempts
        raise
    return result, attempts


def _state_after(exc: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.set_exception((type(exc), exc, exc.__traceback__))
    return state
