"""Typed errors of the Runway API, all :class:`masquerade.ProviderError` subclasses.

Every error carries the HTTP ``status_code`` (when there was an answer), the ``error``
message of Runway's JSON body, and ``retryable`` (whether trying again later can help)::

    try:
        await client.retrieve_realtime_session(session_id)
    except RunwayNotFound:
        ...                       # the id is unknown (or the session expired)
    except RunwayError as exc:
        print(exc.status_code, exc.error, exc.retryable)
"""

from __future__ import annotations

from masquerade import ProviderError, redact

__all__ = [
    "RunwayError",
    "RunwayAPIStatusError",
    "RunwayBadRequest",
    "RunwayAuthenticationError",
    "RunwayPermissionDenied",
    "RunwayNotFound",
    "RunwayConflict",
    "RunwayRateLimited",
    "RunwayServerError",
    "RunwayConnectionError",
    "RunwayTimeout",
    "RunwayProtocolError",
    "status_error",
]

_HINTS: dict[int, str] = {
    400: "fix the request as the message says; retrying the same request will not help",
    401: "check the API key: set RUNWAYML_API_SECRET (or pass api_key=...) to a key from "
    "the Runway developer portal",
    403: "this key is not allowed to do that; check the key's organization and plan",
    404: "the id is unknown to Runway (a typo, another organization's id, or expired)",
    405: "this endpoint does not support that method; check the base URL",
    409: "the resource changed meanwhile; retry later",
    422: "fix the request as the message says",
    429: "too many requests or the plan's limit was reached; wait and retry, or check the "
    "plan's concurrency limits",
}
_SERVER_HINT = "Runway is shedding load or failing; masquerade retries where it is safe"


#: The most characters of Runway's error message an error keeps.
MAX_ERROR_CHARS = 500


class RunwayError(ProviderError):
    """Any error talking to Runway. ``error`` is the message Runway gave, if any,
    redacted and cut to :data:`MAX_ERROR_CHARS` (the raw body is never kept)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        code: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        if error is not None:
            error = redact(error[:MAX_ERROR_CHARS])
        self.error = error
        super().__init__(
            message,
            provider="runway",
            status_code=status_code,
            code=code,
            retryable=retryable,
            retry_after=retry_after,
            hint=hint,
        )


class RunwayAPIStatusError(RunwayError):
    """Runway answered with an HTTP error status."""


class RunwayBadRequest(RunwayAPIStatusError):
    """400 (or 422): the request was invalid; ``error`` says why."""


class RunwayAuthenticationError(RunwayAPIStatusError):
    """401: the API key (or session key) is missing or wrong."""


class RunwayPermissionDenied(RunwayAPIStatusError):
    """403: the key may not do this."""


class RunwayNotFound(RunwayAPIStatusError):
    """404: no such session, conversation or avatar."""


class RunwayConflict(RunwayAPIStatusError):
    """409: a conflicting change; retryable."""


class RunwayRateLimited(RunwayAPIStatusError):
    """429: too many requests or a plan limit; retryable, ``retry_after`` when Runway said."""


class RunwayServerError(RunwayAPIStatusError):
    """5xx: Runway failed or shed load; retryable."""


class RunwayConnectionError(RunwayError):
    """Runway could not be reached (or the connection broke); retryable."""


class RunwayTimeout(RunwayConnectionError):
    """Runway did not answer in time."""


class RunwayProtocolError(RunwayError):
    """Runway answered something masquerade cannot use (e.g. READY without a sessionKey)."""


def status_error(
    status: int,
    error: str | None,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
    retryable: bool | None = None,
) -> RunwayAPIStatusError:
    """Build the typed error for an HTTP error answer."""
    cls: type[RunwayAPIStatusError]
    if status in (400, 422):
        cls = RunwayBadRequest
    elif status == 401:
        cls = RunwayAuthenticationError
    elif status == 403:
        cls = RunwayPermissionDenied
    elif status == 404:
        cls = RunwayNotFound
    elif status == 409:
        cls = RunwayConflict
    elif status == 429:
        cls = RunwayRateLimited
    elif status >= 500:
        cls = RunwayServerError
    else:
        cls = RunwayAPIStatusError
    if retryable is None:
        retryable = status in (408, 409, 429) or status >= 500
    detail = f": {error}" if error else ""
    return cls(
        f"Runway answered {status} to {method} {path}{detail}",
        status_code=status,
        error=error,
        retryable=retryable,
        retry_after=retry_after,
        hint=_HINTS.get(status, _SERVER_HINT if status >= 500 else None),
    )
