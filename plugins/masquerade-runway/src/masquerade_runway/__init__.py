"""Runway ``gwm1_avatars`` realtime sessions for masquerade.

::

    import masquerade

    async with masquerade.Host() as host:          # the plugin is found by entry point
        result = await host.run_session(
            masquerade.SessionRequest(
                provider="runway", avatar="cooking-teacher", tools=[lookup_order]
            )
        )

The pieces, usable on their own:

* :class:`RunwayProvider` -- the provider (``tool_dialect = "runway"``);
* :class:`RunwayClient` -- the async REST client (retries, typed errors), with custom
  avatars, knowledge documents, uploads and conversations as ``client.avatars``,
  ``client.documents``, ``client.uploads``, ``client.conversations``;
* :class:`LiveKitIntegration`, :class:`ElevenLabsIntegration` -- your own agent speaking
  through the avatar (``options={"integration": ...}``);
* :class:`Room`, :class:`LiveKitRoom`, :class:`EmulatorRoom` -- the room seam;
* :mod:`masquerade_runway.emulator` -- the loopback emulator (``RunwayEmulator``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client import API_VERSION, DEFAULT_BASE_URL, RunwayClient
from ._emulator_room import EmulatorRoom
from ._errors import (
    RunwayAPIStatusError,
    RunwayAuthenticationError,
    RunwayBadRequest,
    RunwayConflict,
    RunwayConnectionError,
    RunwayError,
    RunwayNotFound,
    RunwayPermissionDenied,
    RunwayProtocolError,
    RunwayRateLimited,
    RunwayServerError,
    RunwayTimeout,
)
from ._integration import ElevenLabsIntegration, LiveKitIntegration
from ._messages import MessageTranslator, TranscriptAccumulator
from ._models import (
    Avatar,
    AvatarConversation,
    AvatarConversationSummary,
    AvatarUsage,
    ConversationTurn,
    CustomVoice,
    Document,
    DocumentUser,
    Page,
    PresetVoice,
    RealtimeSession,
    RoomCredentials,
    UsageDay,
)
from ._provider import RunwayProvider
from ._request import MAX_DURATION_LIMIT, PRACTICAL_DURATION, PRESET_AVATARS, build_session_body
from ._resources import UNSET, AvatarsAPI, ConversationsAPI, DocumentsAPI, UploadsAPI
from ._room import DataMessage, Room, RoomError, RpcFailure, RpcInvocation
from ._session import END_CALL, RunwaySession
from ._tool_rpc import WORKER_PREFIX

if TYPE_CHECKING:
    from ._livekit import LiveKitRoom

__all__ = [
    "RunwayProvider",
    "RunwaySession",
    "RunwayClient",
    "AvatarsAPI",
    "DocumentsAPI",
    "UploadsAPI",
    "ConversationsAPI",
    "UNSET",
    "DEFAULT_BASE_URL",
    "API_VERSION",
    "PRESET_AVATARS",
    "MAX_DURATION_LIMIT",
    "PRACTICAL_DURATION",
    "END_CALL",
    "WORKER_PREFIX",
    "build_session_body",
    "LiveKitIntegration",
    "ElevenLabsIntegration",
    # room seam
    "Room",
    "RoomError",
    "LiveKitRoom",
    "EmulatorRoom",
    "RpcInvocation",
    "RpcFailure",
    "DataMessage",
    "MessageTranslator",
    "TranscriptAccumulator",
    # wire models
    "RealtimeSession",
    "RoomCredentials",
    "AvatarConversation",
    "AvatarConversationSummary",
    "ConversationTurn",
    "Avatar",
    "Document",
    "DocumentUser",
    "AvatarUsage",
    "UsageDay",
    "PresetVoice",
    "CustomVoice",
    "Page",
    # errors
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
]


def __getattr__(name: str) -> Any:
    # LiveKitRoom imports the livekit RTC SDK (a native library): only load it when used.
    if name == "LiveKitRoom":
        from ._livekit import LiveKitRoom

        return LiveKitRoom
    raise AttributeError(f"module 'masquerade_runway' has no attribute {name!r}")
