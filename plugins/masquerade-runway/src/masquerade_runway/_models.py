"""Runway's response bodies as pydantic models (snake_case in Python, camelCase on the wire).

Parsing is lenient: unknown fields are ignored (not kept: a new field could carry a
secret into a repr or a JSON dump) and statuses are open strings, so a new field or status
from Runway never breaks a session. Secrets
(``sessionKey``, LiveKit ``token``) are :class:`pydantic.SecretStr` and are registered with
:func:`masquerade.register_session_secret` as soon as they are parsed.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.alias_generators import to_camel

from masquerade import register_session_secret

__all__ = [
    "RealtimeSession",
    "RoomCredentials",
    "ConversationTurn",
    "AvatarConversation",
    "AvatarConversationSummary",
    "Avatar",
    "Document",
    "DocumentUser",
    "AvatarUsage",
    "UsageDay",
    "PresetVoice",
    "CustomVoice",
    "Page",
    "SESSION_STATUSES",
    "TERMINAL_STATUSES",
]

#: Every status of a realtime session, in lifecycle order.
SESSION_STATUSES = ("NOT_READY", "READY", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


def _secret(value: Any) -> Any:
    if isinstance(value, str):
        register_session_secret(value)
    return value


class RealtimeSession(_Wire):
    """``GET /v1/realtime_sessions/{id}``: one variant per ``status``, flattened."""

    id: str
    status: str
    created_at: str | None = None
    queued: bool | None = None
    session_key: SecretStr | None = None
    expires_at: str | None = None
    duration: float | None = None
    failure: str | None = None
    failure_code: str | None = None

    _register = field_validator("session_key", mode="before")(_secret)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class RoomCredentials(_Wire):
    """LiveKit credentials from ``consume`` or ``connect_backend``: ``{url, token, roomName}``.

    ``room_transport`` is not part of Runway's API: masquerade's emulator sets it
    (``"emulator"``) so a client knows the room is the emulator's websocket room.
    """

    url: str
    token: SecretStr
    room_name: str
    room_transport: str | None = None

    _register = field_validator("token", mode="before")(_secret)


class ConversationTurn(_Wire):
    """One turn of a conversation transcript."""

    role: str
    content: str | None = None
    timestamp: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_results: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("tool_calls", "tool_results", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class AvatarConversation(_Wire):
    """``GET /v1/avatar_conversations/{id}``: status ``in_progress``, ``ended`` or ``failed``."""

    id: str
    status: str
    name: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration: float | None = None
    max_duration: float | None = None
    avatar: dict[str, Any] | None = None
    recording_url: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    transcript: list[ConversationTurn] = Field(default_factory=list)
    failure: str | None = None
    failure_code: str | None = None


class AvatarConversationSummary(_Wire):
    """An item of ``GET /v1/avatar_conversations``."""

    id: str
    status: str
    name: str | None = None
    created_at: str | None = None
    duration: float | None = None
    has_tools: bool | None = None
    avatar: dict[str, Any] | None = None


class Avatar(_Wire):
    """``GET /v1/avatars/{id}``. ``status`` is an open string (``READY``, ``PROCESSING``...)."""

    id: str
    name: str | None = None
    status: str | None = None
    personality: str | None = None
    start_script: str | None = None
    voice: dict[str, Any] | None = None
    reference_image_uri: str | None = None
    processed_image_uri: str | None = None
    document_ids: list[str] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None
    failure_reason: str | None = None


class DocumentUser(_Wire):
    """An avatar a knowledge document is attached to."""

    id: str
    name: str | None = None
    image_url: str | None = None


class Document(_Wire):
    """A knowledge document (``GET /v1/documents/{id}``); list items have no ``content``."""

    id: str
    name: str | None = None
    type: str | None = None
    content: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    used_by: list[DocumentUser] = Field(default_factory=list)


class UsageDay(_Wire):
    """One UTC day of :class:`AvatarUsage`."""

    date: str
    seconds: int = 0
    sessions: int = 0


class AvatarUsage(_Wire):
    """``GET /v1/avatar_usage``: conversations started in a date range and their seconds."""

    total_sessions: int = 0
    total_seconds: int = 0
    avg_duration_seconds: int = 0
    by_day: list[UsageDay] = Field(default_factory=list)


class PresetVoice(_Wire):
    """One of Runway's preset voices (``clara``, ``leo``...) for a custom avatar."""

    type: Literal["runway-live-preset"] = "runway-live-preset"
    preset_id: str


class CustomVoice(_Wire):
    """A custom voice (created with Runway's voices API) for a custom avatar."""

    type: Literal["custom"] = "custom"
    id: str


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(_Wire, Generic[ItemT]):
    """One page of a cursor-paginated list; ``next_cursor`` is ``None`` on the last."""

    data: list[ItemT] = Field(default_factory=list)
    next_cursor: str | None = None
