"""The emulator's HTTP API and websocket room, as an ASGI app (starlette).

Same paths, fields and status codes as Runway's API: ``{id}`` on create, 204 on DELETE,
``{"error": "..."}`` bodies, 400 for invalid bodies and a missing ``X-Runway-Version``,
401 for a wrong key, 404 for unknown ids, 429 over the account's daily limit. The
endpoints live by resource: ``_api_sessions``, ``_conversations``, ``_api_library``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from ._api_library import library_routes
from ._api_sessions import session_routes
from ._conversations import conversation_routes
from ._core import Emulator
from ._faults import FaultInjection
from ._http import error

__all__ = ["build_app"]


def build_app(emulator: Emulator) -> ASGIApp:
    """The ASGI app serving ``emulator`` (requests recorded, faults injected)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail))

    app = Starlette(
        routes=[
            *session_routes(emulator),
            *conversation_routes(emulator),
            *library_routes(emulator),
        ],
        exception_handlers={HTTPException: http_error},
    )
    return FaultInjection(app, emulator.book)
