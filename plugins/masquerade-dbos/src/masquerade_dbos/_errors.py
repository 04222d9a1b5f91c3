"""The errors of durable runs (picklable: DBOS stores a failed run's error)."""

from __future__ import annotations

from typing import Any

from masquerade import MasqueradeError

__all__ = ["DurableError", "RunFailed", "WorkerLost", "NotAsyncio"]


class DurableError(MasqueradeError):
    """Base class of the errors raised by ``masquerade_dbos``."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.hint))


def _rebuild(cls: type[DurableError], message: str, hint: str | None) -> DurableError:
    return cls(message, hint=hint)


class RunFailed(DurableError):
    """A durable graph run ended with an error (the message names the node and cause)."""


class WorkerLost(DurableError):
    """The worker running a live session died and the session cannot be re-attached.

    Raised for a node whose provider offers no ``resume`` (an OpenAI websocket session):
    the call is not placed a second time behind the user's back; the node's retry
    policy decides whether a new call is made. ``failure_code`` is ``"worker_lost"``.
    """

    failure_code = "worker_lost"


class NotAsyncio(DurableError):
    """Durable runs need asyncio (DBOS is asyncio-only); they were used under trio."""
