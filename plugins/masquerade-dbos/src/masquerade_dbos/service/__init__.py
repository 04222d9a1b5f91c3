"""The call service: ``masquerade serve FILE[:GRAPH]``, an HTTP API over durable runs.

Frontends and phone lines start calls, get their join credentials and follow runs::

    POST /v1/runs                          {"state": {...}, "idempotency_key": "..."}
    GET  /v1/runs/{id}                     status, state, error
    GET  /v1/runs/{id}/credentials?wait=S  the frontend's join credentials (client token)
    GET  /v1/runs/{id}/events              Server-Sent Events (Last-Event-ID)
    POST /v1/runs/{id}/cancel
    POST /v1/webhooks/openai               incoming SIP calls (signed webhooks)
    GET  /healthz  /readyz  /openapi.json  /join

In Python, :func:`create_app` builds the ASGI application for a running
:class:`~masquerade_dbos.DurableGraph` (serve it with uvicorn or mount it in your own
app). starlette and uvicorn are dependencies of ``masquerade-dbos`` only. Replayed OpenAI
webhooks are refused across every ``serve`` process of a database
(:class:`DatabaseReplayStore`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._openapi import openapi_schema, render_markdown

if TYPE_CHECKING:
    from ._app import ApiError, ServiceConfig, create_app
    from ._replay import DatabaseReplayStore

# starlette and DBOS load on first use: `masquerade --help` imports this package.
_LAZY = {"ApiError", "ServiceConfig", "create_app"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _app

        return getattr(_app, name)
    if name == "DatabaseReplayStore":
        from ._replay import DatabaseReplayStore

        return DatabaseReplayStore
    raise AttributeError(f"module 'masquerade_dbos.service' has no attribute {name!r}")


__all__ = [
    "create_app",
    "ServiceConfig",
    "ApiError",
    "DatabaseReplayStore",
    "openapi_schema",
    "render_markdown",
]
