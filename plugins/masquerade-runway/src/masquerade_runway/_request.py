"""``masquerade.SessionRequest`` -> the body of ``POST /v1/realtime_sessions``."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from masquerade import ConfigurationError, SessionRequest

from ._integration import ElevenLabsIntegration, LiveKitIntegration, parse_integration

__all__ = [
    "PRESET_AVATARS",
    "MAX_DURATION_LIMIT",
    "PRACTICAL_DURATION",
    "MAX_TOOLS",
    "KNOWN_OPTIONS",
    "build_session_body",
    "avatar_body",
    "session_integration",
]

logger = logging.getLogger("masquerade.runway")

#: Runway's preset avatars (``{"type": "runway-preset", "presetId": ...}``).
PRESET_AVATARS = frozenset(
    {
        "game-character",
        "music-superstar",
        "game-character-man",
        "cat-character",
        "influencer",
        "tennis-coach",
        "human-resource",
        "fashion-designer",
        "cooking-teacher",
    }
)
#: The API rejects a longer ``maxDuration`` (400 "Too big: expected number to be <=1800").
MAX_DURATION_LIMIT = 1800
#: Sessions are ended after about this long in practice, whatever ``maxDuration`` says.
PRACTICAL_DURATION = 300
MAX_TOOLS = 20
MODEL = "gwm1_avatars"

#: ``SessionRequest.options`` this provider understands.
KNOWN_OPTIONS: Mapping[str, str] = {
    "consume": "True: call consume and hand the frontend LiveKit {url, token, roomName} "
    "instead of {sessionId, sessionKey}",
    "room": "'livekit' or 'emulator': which room implementation the backend joins with",
    "backend": "False: do not join the room (no backend tools, transcripts or client "
    "events); only follow the session's status",
    "avatar_type": "'preset' or 'custom': how to read `avatar` (default: preset ids are "
    "presets, anything else is a custom avatar id)",
    "integration": "a LiveKitIntegration or ElevenLabsIntegration (or its mapping): your own "
    "agent speaks through the avatar; no tools, no backend",
    "long_call": "'none', 'end' or 'continue': what happens before Runway's cap on a call's "
    "length (see masquerade_runway's long calls)",
    "call_cap": "seconds after which Runway ends a call (default 300)",
    "cap_margin": "seconds before call_cap at which long_call acts (default 15)",
    "continue_script": "the opening line of a continued call's next session",
}


def avatar_body(avatar: str | None, avatar_type: str | None = None) -> dict[str, str]:
    """``{"type":"runway-preset","presetId":...}`` or ``{"type":"custom","avatarId":...}``."""
    if not avatar:
        presets = ", ".join(sorted(PRESET_AVATARS))
        raise ConfigurationError(
            "a Runway session needs an avatar",
            hint=f"set avatar= to a preset ({presets}) or to a custom avatar's id",
        )
    if avatar_type not in (None, "preset", "custom"):
        raise ConfigurationError(
            f"options['avatar_type'] is {avatar_type!r}", hint="use 'preset' or 'custom'"
        )
    if avatar_type == "preset" and avatar not in PRESET_AVATARS:
        raise ConfigurationError(
            f"{avatar!r} is not a Runway preset avatar",
            hint="use one of: " + ", ".join(sorted(PRESET_AVATARS)),
        )
    if avatar_type == "preset" or (avatar_type is None and avatar in PRESET_AVATARS):
        return {"type": "runway-preset", "presetId": avatar}
    return {"type": "custom", "avatarId": avatar}


def session_integration(
    request: SessionRequest,
) -> LiveKitIntegration | ElevenLabsIntegration | None:
    """The request's ``options["integration"]`` as a model (``None`` when not given)."""
    value = request.options.get("integration")
    return None if value is None else parse_integration(value)


def build_session_body(
    request: SessionRequest, tools: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Validate ``request`` and build the create body (camelCase, as on the wire).

    Raises :class:`~masquerade.ConfigurationError` for what Runway would reject, before
    anything is sent.
    """
    unknown = sorted(set(request.options) - set(KNOWN_OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in KNOWN_OPTIONS.items())
        raise ConfigurationError(
            f"unknown Runway session option(s): {', '.join(unknown)}",
            hint=f"the options are {known}",
        )
    body: dict[str, Any] = {
        "model": request.model or MODEL,
        "avatar": avatar_body(request.avatar, request.options.get("avatar_type")),
    }
    if request.max_duration is not None:
        seconds = math.ceil(request.max_duration)
        if seconds > MAX_DURATION_LIMIT:
            raise ConfigurationError(
                f"max_duration {request.max_duration:g}s is over Runway's limit of "
                f"{MAX_DURATION_LIMIT}s",
                hint=f"use at most {MAX_DURATION_LIMIT} (and expect sessions to end near "
                f"{PRACTICAL_DURATION}s in practice)",
            )
        if seconds > PRACTICAL_DURATION:
            logger.warning(
                "max_duration is %ds, but Runway ends sessions after about %ds in practice",
                seconds,
                PRACTICAL_DURATION,
            )
        body["maxDuration"] = seconds
    if request.personality is not None:
        body["personality"] = request.personality
    if request.start_script is not None:
        body["startScript"] = request.start_script
    integration = session_integration(request)
    if integration is not None:
        if tools:
            raise ConfigurationError(
                f"this session has tools and an integration ({integration.type})",
                hint="with an integration your own agent owns the conversation: give the "
                "tools to your agent, not to the Runway session",
            )
        body["integration"] = integration.to_wire()
    if tools:
        if len(tools) > MAX_TOOLS:
            raise ConfigurationError(
                f"this session has {len(tools)} tools; Runway takes at most {MAX_TOOLS}",
                hint="split the conversation, or offer fewer tools to this session",
            )
        body["tools"] = [dict(t) for t in tools]
    return body
