"""What a session takes and gives back: :class:`SessionRequest` in,
:class:`SessionResult` (with its :class:`ToolCallRecord` list) out.

Plain pydantic models with no behaviour of their own; :mod:`masquerade.session` runs
them and re-exports them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import ToolDefinitionError
from .events import Outcome
from .provider import TranscriptTurn
from .tools import Tool, as_tool, check_session_tools

__all__ = ["DEFAULT_MAX_DURATION", "SessionRequest", "SessionResult", "ToolCallRecord"]


DEFAULT_MAX_DURATION = 300.0


class SessionRequest(BaseModel):
    """What to start: which provider, which avatar or model, with which tools.

    Args:
        provider: the provider name (``"runway"``, ``"openai"``, ``"scripted"``...).
        avatar: Runway: a preset id (``"cooking-teacher"``) or a custom avatar id.
        model: the provider's model, when it has a choice.
        name: a display name for the agent (used in traces and logs).
        personality: the system prompt / personality for this session.
        start_script: the opening line.
        max_duration: seconds the call may last; the session ends through its cancel
            path when it is reached. Every session has one: 300 by default
            (:data:`DEFAULT_MAX_DURATION`, about what Runway allows in practice); ``None``
            removes the bound.
        tools: :class:`~masquerade.Tool` objects or plain functions.
        options: provider-specific options (Runway ``consume=True``, OpenAI ``voice``...).
        provisioning_timeout: seconds to wait for the session to become ready.
        provisioning_timeout: ...also covers the provider's *create* call: the session is
            created and ready within this many seconds or it fails.
        end_timeout: bound, in seconds, on each step of the cancel path.
        hook_timeout: bound, in seconds, on each await of plugin or user code outside a
            tool: an async observer's or ``on_event``'s awaitable, each
            ``masquerade_session_ended`` implementation. A tool call's whole
            ``masquerade_tool_invoke`` chain is bounded by the tool's ``timeout`` plus
            this (wrappers included).
        metadata: free-form data carried into events' session and the result.
        history: keep the last ``history`` events (every kind but audio) for late
            subscribers' replay. By default (0) a late subscriber is replayed only the
            compact record the result is made of: lifecycle (``status``, ``ready``,
            ``error``, ``ended``), finished transcript turns, tool calls and results,
            client events. Opt in to more; the bound keeps a long session's memory flat.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    provider: str
    avatar: str | None = None
    model: str | None = None
    name: str | None = None
    personality: str | None = None
    start_script: str | None = None
    max_duration: float | None = Field(default=DEFAULT_MAX_DURATION, gt=0)
    tools: tuple[Tool, ...] = ()
    options: dict[str, Any] = Field(default_factory=dict)
    provisioning_timeout: float = Field(default=120.0, gt=0)
    end_timeout: float = Field(default=15.0, gt=0)
    hook_timeout: float = Field(default=10.0, gt=0)
    metadata: dict[str, Any] = Field(default_factory=dict)
    history: int = Field(default=0, ge=0)

    @field_validator("tools", mode="before")
    @classmethod
    def _as_tools(cls, value: Any) -> tuple[Tool, ...]:
        tools = tuple(as_tool(t) for t in (value or ()))
        seen: set[str] = set()
        for t in tools:
            if t.name in seen:
                raise ToolDefinitionError(
                    f"two tools are named {t.name!r}",
                    hint="give one of them another name with @tool(name=...)",
                )
            seen.add(t.name)
        check_session_tools(tools)
        return tools


class ToolCallRecord(BaseModel):
    """One tool call of a session and its answer."""

    call_id: str
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    output: Any = None
    error: str | None = None
    error_type: str | None = None
    duration_ms: float = 0.0


class SessionResult(BaseModel):
    """The final result of a session: what graphs hand to their next node."""

    session_id: str
    provider: str
    provider_session_id: str | None = None
    outcome: Outcome
    reason: str = ""
    transcript: list[TranscriptTurn] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    client_events: list[dict[str, Any]] = Field(default_factory=list)
    duration_s: float | None = None
    failure: str | None = None
    failure_code: str | None = None
    error: str | None = None
    recording_url: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    dropped_audio: int = 0
    #: ``True`` when the provider confirmed the end, ``False`` when the cancel path failed
    #: or timed out (the session may still run, and bill, at the provider), ``None`` when
    #: no provider session was created.
    provider_ended: bool | None = None
    #: Provider-specific facts about the call (``ProviderOutcome.extra``), e.g. Runway's
    #: ``runway_status``, ``ended_with``, ``long_call`` and ``segments``.
    extra: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime
    ended_at: datetime

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"

    @property
    def text(self) -> str:
        """The transcript as ``role: text`` lines."""
        return "\n".join(f"{t.role}: {t.text}" for t in self.transcript if t.text)
