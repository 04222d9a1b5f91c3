"""``/v1/avatar_conversations`` (list, retrieve, delete) and the recordings their
``recordingUrl`` points at.

Every session has a conversation, also one that never started (listed with a null
``duration``, no ``startedAt`` and no recording). A ``recordingUrl`` is signed and expires
after :attr:`SessionPlan.recording_ttl` seconds (Runway's live 24-48 h): fetch the
conversation again for a fresh one. ``DELETE`` erases the transcript and the recording
(204); the conversation is then gone (404), and one still in progress cannot be deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._request import PRESET_AVATARS
from ._http import endpoint, page, query_date
from ._session import EmulatedSession, iso
from ._validate import ApiError

if TYPE_CHECKING:
    from ._core import Emulator

__all__ = ["conversation", "conversation_summary", "conversation_routes", "PRESET_NAMES"]

#: The display name of each preset avatar (conversation ``name`` and ``avatar.name``).
PRESET_NAMES = {preset: preset.replace("-", " ").title() for preset in PRESET_AVATARS}
#: A few bytes that start like an MP4 file: the emulator's recordings.
RECORDING = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


def avatar_wire(emulator: Emulator, session: EmulatedSession) -> dict[str, Any]:
    avatar = session.body["avatar"]
    if avatar.get("type") != "custom":
        preset = str(avatar.get("presetId"))
        return {"type": "runway-preset", "presetId": preset, "name": PRESET_NAMES.get(preset)}
    with emulator.lock:
        stored = emulator.library.avatars.get(avatar.get("avatarId"))
    if stored is None:  # deleted since
        return {"type": "custom", "id": None, "name": None, "imageUrl": None}
    return {
        "type": "custom",
        "id": stored.id,
        "name": stored.name,
        "imageUrl": stored.image_uri(emulator.public_url),
    }


def recording_signature(emulator: Emulator, session_id: str, expires: int) -> str:
    message = f"{session_id}:{expires}".encode()
    return hmac.new(emulator.recording_secret, message, hashlib.sha256).hexdigest()[:32]


def recording_url(emulator: Emulator, session: EmulatedSession) -> str:
    expires = int(time.time() + session.plan.recording_ttl)
    signature = recording_signature(emulator, session.id, expires)
    query = f"expires={expires}&signature={signature}"
    return f"{emulator.public_url}/recordings/{session.id}.mp4?{query}"


def conversation(emulator: Emulator, session: EmulatedSession) -> dict[str, Any]:
    status = session.conversation_status(time.monotonic())
    avatar = avatar_wire(emulator, session)
    out: dict[str, Any] = {
        "id": session.id,
        "name": avatar.get("name") or "Avatar",
        "status": status,
        "createdAt": iso(session.created_wall),
        "avatar": avatar,
        "tools": [
            {"type": t["type"], "name": t["name"], "description": t["description"]}
            for t in session.tools
        ],
        "transcript": [dict(turn) for turn in session.transcript],
        "maxDuration": session.body.get("maxDuration"),
        "duration": None,
    }
    if session.running_at is not None:
        out["startedAt"] = iso(session.created_wall + (session.running_at - session.created))
    if status != "in_progress":
        assert session.ended_at is not None
        out["endedAt"] = iso(session.created_wall + (session.ended_at - session.created))
        if session.running_at is not None:
            out["duration"] = session.duration or 0
            out["recordingUrl"] = recording_url(emulator, session)
    if status == "failed":
        out["failure"] = session.failure
        out["failureCode"] = session.failure_code
    return out


def conversation_summary(emulator: Emulator, session: EmulatedSession) -> dict[str, Any]:
    full = conversation(emulator, session)
    summary = {k: full[k] for k in ("id", "name", "status", "createdAt", "avatar", "duration")}
    summary["hasTools"] = bool(session.tools)
    return summary


def conversation_routes(emulator: Emulator) -> list[BaseRoute]:
    def find(session_id: str) -> EmulatedSession:
        with emulator.lock:
            session = emulator.sessions.get(session_id)
        if session is None or session.conversation_deleted:
            raise ApiError("Conversation not found", 404)
        return emulator.refresh(session)

    async def listing(request: Request) -> Response:
        avatar = request.query_params.get("avatar")
        start = query_date(request, "startDate")
        end = query_date(request, "endDate")
        with emulator.lock:
            sessions = [s for s in emulator.sessions.values() if not s.conversation_deleted]
        items = []
        for session in sorted(sessions, key=lambda s: s.created_wall, reverse=True):
            if avatar and session.body["avatar"].get("avatarId") != avatar:
                continue
            if start and session.created_wall < start.timestamp():
                continue
            if end and session.created_wall >= end.timestamp():
                continue
            emulator.refresh(session)
            items.append(conversation_summary(emulator, session))
        return page(items, request)

    async def resource(request: Request) -> Response:
        session = find(request.path_params["id"])
        if request.method == "DELETE":
            if session.conversation_status(time.monotonic()) == "in_progress":
                raise ApiError("Conversation is in progress: end the session first")
            with emulator.lock:
                session.conversation_deleted = True
                session.transcript.clear()
            return Response(status_code=204)
        return JSONResponse(conversation(emulator, session))

    async def recording(request: Request) -> Response:
        session_id = request.path_params["id"]
        with emulator.lock:
            session = emulator.sessions.get(session_id)
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            expires = 0
        signature = request.query_params.get("signature", "")
        expected = recording_signature(emulator, session_id, expires)
        if not hmac.compare_digest(signature, expected):
            return Response("Signature does not match", status_code=403)
        if time.time() > expires:
            return Response("Request has expired", status_code=403)
        if session is None or session.conversation_deleted or session.running_at is None:
            return Response("Not found", status_code=404)
        return Response(RECORDING, media_type="video/mp4")

    return [
        Route("/v1/avatar_conversations", endpoint(emulator, listing), methods=["GET"]),
        Route(
            "/v1/avatar_conversations/{id}",
            endpoint(emulator, resource),
            methods=["GET", "DELETE"],
        ),
        Route("/recordings/{id}.mp4", recording, methods=["GET"]),
    ]
