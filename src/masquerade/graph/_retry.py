"""Retry policies of graph nodes.

::

    graph.add_node("call", avatar, retry=RetryPolicy(max_attempts=3, backoff=2.0,
                                                     retry_on=ProviderError))

A node whose run raises is run again (with a fresh copy of the state) while the policy
allows it; the delay before attempt ``n + 1`` is ``backoff * multiplier ** (n - 1)``,
capped at ``max_backoff``. When the last attempt fails, the run fails with that
attempt's error. In a durable run (``masquerade-dbos``) every attempt is a checkpointed
step and the delay a durable sleep, so attempts are counted across crashes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from ..errors import GraphValidationError

__all__ = ["RetryPolicy", "RetryOn"]

#: Which errors are retried: exception classes, or a predicate on the exception.
RetryOn: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failed node runs again.

    Args:
        max_attempts: attempts in all, the first one included (``1``: no retry).
        backoff: seconds before the second attempt.
        multiplier: each further delay is this many times the previous one.
        max_backoff: the longest delay, in seconds.
        retry_on: the errors worth another attempt: an exception class, a tuple of them,
            or a function ``error -> bool`` (default: every ``Exception``).
    """

    max_attempts: int = 3
    backoff: float = 1.0
    multiplier: float = 2.0
    max_backoff: float = 60.0
    retry_on: RetryOn = Exception

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise GraphValidationError(
                f"RetryPolicy(max_attempts={self.max_attempts}) must allow one attempt",
                hint="max_attempts counts the first attempt: use 1 for no retry",
            )
        if self.backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise GraphValidationError(
                "RetryPolicy delays must be >= 0 and its multiplier >= 1",
                hint="e.g. RetryPolicy(max_attempts=3, backoff=1.0, multiplier=2.0)",
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.backoff * self.multiplier ** (attempt - 1)))

    def should_retry(self, error: BaseException) -> bool:
        """Whether ``error`` is one this policy retries."""
        retry_on = self.retry_on
        if isinstance(retry_on, type | tuple):
            return isinstance(error, retry_on)
        return bool(retry_on(error))
