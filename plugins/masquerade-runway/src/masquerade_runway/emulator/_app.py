"""The emulator's HTTP API and websocket room, as an ASGI app (starlette).

Same paths, fields and status codes as Runway's API: ``{id}`` on create, 204 on DELETE,
``{"error": "..."}`` bodies, 400 for invalid bodies and a missing ``X-Runway-Version``,
401 for a wrong key, 404 for unknown ids.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from .._client import API_VERSION
from ._conversations import conversation as conversation_wire
from ._conversations import conversation_summary
from ._core import TERMINAL, EmulatedSession, Emulator
from ._faults import FaultInjection
from ._room import Participant
from ._validate import CreateSessionBody, ValidationError, validation_message

__all__ = ["build_app"]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _page(items: Sequence[dict[str, Any]], request: Request) -> JSONResponse:
    raw_limit = request.query_params.get("limit")
    try:
        limit = int(raw_limit) if raw_limit is not None else 20
    except ValueError:
        return _error(400, "Invalid input: expected number, received string")
    if not 1 <= limit <= 100:
        return _error(400, "Too big: expected number to be <=100" if limit > 100 else
                      "Too small: expected number to be >=1")
    offset = 0
    cursor = request.query_params.get("cursor")
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except ValueError:
            return _error(400, "Invalid cursor")
    chunk = list(items[offset : offset + limit])
    body: dict[str, Any] = {"data": chunk}
    if offset + limit < len(items):
        body["nextCursor"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
    return JSONResponse(body)


def build_app(emulator: Emulator) -> ASGIApp:
    """The ASGI app serving ``emulator``."""

    def check_key(request: Request, *, session: EmulatedSession | None = None) -> Response | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        expected = emulator.api_key
        if session is not None:  # consume authenticates with the session key
            expected = session.session_key or ""
            if not token or not expected or not secrets.compare_digest(token, expected):
                return _error(401, "Invalid session key")
            return None
        if not token or not secrets.compare_digest(token, expected):
            return _error(401, "Invalid API key")
        if request.headers.get("x-runway-version") != API_VERSION:
            return _error(
                400,
                f'Invalid or missing X-Runway-Version header: use "{API_VERSION}"',
            )
        return None

    def find(session_id: str) -> EmulatedSession | None:
        with emulator.lock:
            session = emulator.sessions.get(session_id)
        if session is not None:
            emulator.refresh(session)
        return session

    async def create_session(request: Request) -> Response:
        if (denied := check_key(request)) is not None:
            return denied
        try:
            data = json.loads(await request.body() or b"null")
        except ValueError:
            return _error(400, "Invalid JSON body")
        if not isinstance(data, dict):
            return _error(400, "Invalid input: expected object")
        try:
            body = CreateSessionBody.model_validate(data)
        except ValidationError as exc:
            return _error(400, validation_message(exc))
        avatar = body.avatar
        if avatar.type == "custom":
            with emulator.lock:
                known = emulator.avatars.get(avatar.avatarId)
            if known is None:
                return _error(400, f"Avatar {avatar.avatarId} not found")
            if known["status"] != "READY":
                return _error(400, f"Avatar {avatar.avatarId} is not ready")
        session = emulator.create_session(body.model_dump(exclude_none=True))
        return JSONResponse({"id": session.id})

    async def session_resource(request: Request) -> Response:
        if (denied := check_key(request)) is not None:
            return denied
        session = find(request.path_params["id"])
        if session is None:
            return _error(404, "Session not found")
        if request.method == "DELETE":
            emulator.finish(session, "CANCELLED", by="api")
            return Response(status_code=204)
        session.polls += 1
        return JSONResponse(session.to_wire())

    async def consume(request: Request) -> Response:
        with emulator.lock:
            session = emulator.sessions.get(request.path_params["id"])
        if session is None:
            return _error(404, "Session not found")
        emulator.refresh(session)
        if (denied := check_key(request, session=session)) is not None:
            return denied
        if session.status != "READY":
            return _error(400, f"Session is {session.status}, not READY")
        if session.consumed:
            return _error(400, "Session has already been consumed")
        session.consumed = True
        return JSONResponse(room_credentials(session, "frontend"))

    async def connect_backend(request: Request) -> Response:
        if (denied := check_key(request)) is not None:
            return denied
        session = find(request.path_params["id"])
        if session is None:
            return _error(404, "Session not found")
        if session.status == "NOT_READY":
            return _error(400, "Session is not ready yet")
        if session.status in TERMINAL:
            return _error(400, f"Session has ended ({session.status})")
        return JSONResponse(room_credentials(session, "backend"))

    def room_credentials(session: EmulatedSession, kind: Any) -> dict[str, Any]:
        return {
            "url": emulator.public_url.replace("http", "ws", 1) + "/rtc",
            "token": emulator.issue_token(session, kind),
            "roomName": session.id,
            # Not part of Runway's API: tells masquerade's client which room this is.
            "roomTransport": "emulator",
        }

    async def conversation(request: Request) -> Response:
        if (denied := check_key(request)) is not None:
            return denied
        session = find(request.path_params["id"])
        if session is None or session.running_at is None:
            return _error(404, "Conversation not found")
        return JSONResponse(conversation_wire(emulator, session))

    async def conversations(request: Request) -> Response:
        if (denied := check_key(request)) is not None:
            return denied
        avatar = request.query_params.get("avatar")
        start = request.query_params.get("startDate")
        end = request.query_params.get("endDate")
        with emulator.lock:
            started = [s for s in emulator.sessions.values() if s.running_at is not None]
        items = []
        for s in sorted(started, key=lambda s: s.created_wall, reverse=True):
            summary = conversation_summary(emulator, s)
            if avatar and s.body["avatar"].get("avatarId") != avatar:
                continue
            if start and summary["createdAt"] < start:
                continue
            if end and summary["createdAt"] >= end:
                continue
            items.append(summary)
        return _page(items, request)

    async def avatars(request: Request) -> Response:
        if (denied := check_key(request)) is not None:
            return denied
        with emulator.lock:
            items = sorted(emulator.avatars.values(), key=lambda a: a["createdAt"], reverse=True)
        return _page(items, request)

    async def avatar(request: Request) -> Response:
        if (denied := check_key(request)) is not None:
            return denied
        with emulator.lock:
            found = emulator.avatars.get(request.path_params["id"])
        if found is None:
            return _error(404, "Avatar not found")
        return JSONResponse(found)

    async def room(websocket: WebSocket) -> None:
        auth = websocket.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        with emulator.lock:
            grant = emulator.tokens.get(token)
            session = emulator.sessions.get(grant[0]) if grant else None
        if grant is None or session is None:
            await websocket.close(code=1008)  # before accept: the handshake gets 403
            return
        _, identity, kind = grant
        await emulator.room_for(session).serve(Participant(identity, kind, websocket))

    async def inventory(request: Request) -> Response:
        # Emulator-only (not Runway's API): every session ever created, for checks such as
        # "one session per run, none left running, no tool answered twice".
        with emulator.lock:
            sessions = list(emulator.sessions.values())
        for session in sessions:
            emulator.refresh(session)
        with emulator.lock:
            items = [session.inventory() for session in sessions]
        return JSONResponse({"sessions": items})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    app = Starlette(
        routes=[
            Route("/v1/realtime_sessions", create_session, methods=["POST"]),
            Route("/v1/realtime_sessions/{id}", session_resource, methods=["GET", "DELETE"]),
            Route("/v1/realtime_sessions/{id}/consume", consume, methods=["POST"]),
            Route("/v1/realtime_sessions/{id}/connect_backend", connect_backend, methods=["POST"]),
            Route("/v1/avatar_conversations", conversations, methods=["GET"]),
            Route("/v1/avatar_conversations/{id}", conversation, methods=["GET"]),
            Route("/v1/avatars", avatars, methods=["GET"]),
            Route("/v1/avatars/{id}", avatar, methods=["GET"]),
            Route("/_emulator/sessions", inventory, methods=["GET"]),
            WebSocketRoute("/rtc", room),
        ],
        exception_handlers={HTTPException: http_error},
    )
    return FaultInjection(app, emulator.book)
