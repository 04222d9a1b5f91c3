"""``/v1/realtime_sessions`` (create, retrieve, cancel, consume, connect_backend), the
websocket room (``/rtc``) and the emulator-only ``GET /_emulator/sessions``.

A ``DELETE`` of a session that already ended answers 204 again and changes nothing (the
first end wins), like Runway's other ``DELETE`` endpoints.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from ._bodies import CreateSessionBody
from ._http import bearer, endpoint, error
from ._room import Participant
from ._session import TERMINAL, EmulatedSession
from ._validate import ApiError, parse_body

if TYPE_CHECKING:
    from ._core import Emulator

__all__ = ["session_routes"]


def session_routes(emulator: Emulator) -> list[BaseRoute]:
    def find(session_id: str) -> EmulatedSession:
        with emulator.lock:
            session = emulator.sessions.get(session_id)
        if session is None:
            raise ApiError("Session not found", 404)
        return emulator.refresh(session)

    async def create(request: Request) -> Response:
        body = parse_body(CreateSessionBody, await request.body())
        if body.avatar.type == "custom":
            avatar_id = body.avatar.avatarId
            with emulator.lock:
                known = emulator.library.avatars.get(avatar_id)
                status = known.status(time.monotonic()) if known else None
            if known is None:
                raise ApiError(f"Avatar {avatar_id} not found")
            if status != "READY":
                raise ApiError(f"Avatar {avatar_id} is not ready ({status})")
        if emulator.over_daily_limit():
            return error(
                429,
                f"You have reached your daily limit of {emulator.account.daily} realtime "
                "sessions",
            )
        session = emulator.create_session(body.session_body())
        return JSONResponse({"id": session.id})

    async def resource(request: Request) -> Response:
        session = find(request.path_params["id"])
        if request.method == "DELETE":
            emulator.finish(session, "CANCELLED", by="api")
            return Response(status_code=204)
        session.polls += 1
        if session.status == "RUNNING" and (session.body.get("integration") or {}).get(
            "type"
        ) == "livekit":
            # Your agent's call goes on in your room; once a client has seen it running,
            # the script's hang-up or failure plays (the emulated avatar says nothing).
            emulator.room_for(session).worker.maybe_start()
        return JSONResponse(session.to_wire())

    async def consume(request: Request) -> Response:
        session = find(request.path_params["id"])
        token, expected = bearer(request), session.session_key or ""
        if not token or not expected or not secrets.compare_digest(token, expected):
            return error(401, "Invalid session key")
        if session.status != "READY":
            raise ApiError(f"Session is {session.status}, not READY")
        if session.consumed:
            raise ApiError("Session has already been consumed")
        session.consumed = True
        return JSONResponse(room_credentials(session, "frontend"))

    async def connect_backend(request: Request) -> Response:
        session = find(request.path_params["id"])
        if session.status == "NOT_READY":
            raise ApiError("Session is not ready yet")
        if session.status in TERMINAL:
            raise ApiError(f"Session has ended ({session.status})")
        if (session.body.get("integration") or {}).get("type") == "livekit":
            raise ApiError("Session uses a LiveKit integration: it has no Runway room")
        return JSONResponse(room_credentials(session, "backend"))

    def room_credentials(
        session: EmulatedSession, kind: Literal["backend", "frontend"]
    ) -> dict[str, Any]:
        return {
            "url": emulator.public_url.replace("http", "ws", 1) + "/rtc",
            "token": emulator.issue_token(session, kind),
            "roomName": session.id,
            # Not part of Runway's API: tells masquerade's client which room this is.
            "roomTransport": "emulator",
        }

    async def room(websocket: WebSocket) -> None:
        token = bearer(websocket)  # type: ignore[arg-type]
        with emulator.lock:
            grant = emulator.tokens.get(token)
            session = emulator.sessions.get(grant[0]) if grant else None
        if grant is None or session is None:
            await websocket.close(code=1008)  # before accept: the handshake gets 403
            return
        _, identity, kind = grant
        await emulator.room_for(session).serve(Participant(identity, kind, websocket))

    async def inventory(request: Request) -> Response:
        # Emulator-only (not Runway's API, no key): every session ever created, for checks
        # such as "one session per run, none left running, no tool answered twice".
        return JSONResponse({"sessions": emulator.inventory()})

    return [
        Route("/v1/realtime_sessions", endpoint(emulator, create), methods=["POST"]),
        Route(
            "/v1/realtime_sessions/{id}", endpoint(emulator, resource), methods=["GET", "DELETE"]
        ),
        Route(
            "/v1/realtime_sessions/{id}/consume",
            endpoint(emulator, consume, api_key=False),
            methods=["POST"],
        ),
        Route(
            "/v1/realtime_sessions/{id}/connect_backend",
            endpoint(emulator, connect_backend),
            methods=["POST"],
        ),
        Route("/_emulator/sessions", inventory, methods=["GET"]),
        WebSocketRoute("/rtc", room),
    ]
