"""What every endpoint of the emulated API shares: authentication, ``{"error": ...}``
answers, cursor pages and query parameters checked the way the API checks them."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._client import API_VERSION
from ._validate import ApiError

if TYPE_CHECKING:
    from ._core import Emulator

__all__ = ["error", "page", "endpoint", "query_date", "Handler"]

Handler = Callable[[Request], Awaitable[Response]]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else ""


def endpoint(emulator: Emulator, handler: Handler, *, api_key: bool = True) -> Handler:
    """``handler`` behind the API key and ``X-Runway-Version`` checks; an
    :class:`ApiError` it raises becomes the API's ``{"error": ...}`` answer."""

    async def handle(request: Request) -> Response:
        if api_key:
            token = bearer(request)
            if not token or not secrets.compare_digest(token, emulator.api_key):
                return error(401, "Invalid API key")
            if request.headers.get("x-runway-version") != API_VERSION:
                message = f'Invalid or missing X-Runway-Version header: use "{API_VERSION}"'
                return error(400, message)
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, exc.message)

    return handle


def page(items: Sequence[dict[str, Any]], request: Request) -> Response:
    """One cursor page of ``items`` (``limit`` 1-100, default 20; ``nextCursor``)."""
    raw_limit = request.query_params.get("limit")
    try:
        limit = int(raw_limit) if raw_limit is not None else 20
    except ValueError:
        raise ApiError("limit: Invalid input: expected number, received string") from None
    if limit > 100:
        raise ApiError("limit: Too big: expected number to be <=100")
    if limit < 1:
        raise ApiError("limit: Too small: expected number to be >=1")
    offset = 0
    cursor = request.query_params.get("cursor")
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except ValueError:
            raise ApiError("Invalid cursor") from None
    chunk = list(items[offset : offset + limit])
    body: dict[str, Any] = {"data": chunk}
    if offset + limit < len(items):
        body["nextCursor"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
    return JSONResponse(body)


def query_date(request: Request, name: str, *, required: bool = False) -> datetime | None:
    """The ISO 8601 date or date-time query parameter ``name`` (UTC when no zone)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(f"{name}: Invalid input: expected string, received undefined")
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(f"{name}: Invalid ISO 8601 date") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
