"""The wire shapes of ``/v1/avatar_conversations``: one conversation, and a list item."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._session import EmulatedSession, iso

if TYPE_CHECKING:
    from ._core import Emulator

__all__ = ["conversation", "conversation_summary"]


def conversation(emulator: Emulator, session: EmulatedSession) -> dict[str, Any]:
    now = time.monotonic()
    status = session.conversation_status(now)
    preset = session.body["avatar"].get("presetId")
    name = (
        preset.replace("-", " ").title()
        if preset
        else emulator.avatars.get(session.body["avatar"].get("avatarId"), {}).get("name")
    )
    out: dict[str, Any] = {
        "id": session.id,
        "name": name or "Avatar",
        "status": status,
        "createdAt": iso(session.created_wall),
        "avatar": session.avatar_wire(),
        "tools": [
            {"type": t["type"], "name": t["name"], "description": t["description"]}
            for t in session.tools
        ],
        "transcript": [dict(turn) for turn in session.transcript],
        "maxDuration": session.body.get("maxDuration"),
    }
    if session.running_at is not None:
        started = session.created_wall + (session.running_at - session.created)
        out["startedAt"] = iso(started)
    if status != "in_progress":
        assert session.ended_at is not None
        out["endedAt"] = iso(session.created_wall + (session.ended_at - session.created))
        out["duration"] = session.duration or 0
        out["recordingUrl"] = f"{emulator.public_url}/recordings/{session.id}.mp4"
    if status == "failed":
        out["failure"] = session.failure
        out["failureCode"] = session.failure_code
    return out

def conversation_summary(emulator: Emulator, session: EmulatedSession) -> dict[str, Any]:
    full = conversation(emulator, session)
    summary: dict[str, Any] = {
        k: full[k] for k in ("id", "name", "status", "createdAt", "avatar") if k in full
    }
    summary["hasTools"] = bool(session.tools)
    if "duration" in full:
        summary["duration"] = full["duration"]
    return summary
