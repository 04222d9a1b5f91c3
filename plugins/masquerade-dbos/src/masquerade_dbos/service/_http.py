"""HTTP plumbing of the call service: JSON errors, bearer tokens, CORS and the guard that
turns every failure into a JSON answer (never a bare 500)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from masquerade import MasqueradeError, redact

logger = logging.getLogger("masquerade.service")


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, http_status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = http_status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code, "message": redact(self.message)}
        body.update(self.extra)
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse({"error": body}, status_code=self.status, headers=headers)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


Handler = Callable[[Request], Awaitable[Response]]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Last-Event-ID, Content-Type",
    "Access-Control-Max-Age": "600",
}


def with_cors(handler: Handler) -> Handler:
    """The frontend endpoints: a page on another origin may call them with its client
    token (a bearer token, never a cookie, so any origin may ask)."""

    async def answer(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS_HEADERS)
        response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    return answer


# What a cross-site form or a no-cors fetch can send without asking (no CORS preflight).
SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def guarded(handler: Handler) -> Handler:
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except MasqueradeError as exc:
            logger.warning("%s %s: %s", request.method, request.url.path, exc.message)
            return ApiError(422, "invalid_request", exc.message).response()
        except Exception as exc:
            logger.exception("%s %s failed", request.method, request.url.path)
            return ApiError(
                503, "unavailable", f"the service could not answer ({type(exc).__name__})"
            ).response()

    return answer
