"""One emulated realtime session: its state, its timeline fields and its wire shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._script import SessionPlan, Step

if TYPE_CHECKING:
    from ._room import Room

__all__ = ["EmulatedSession", "BackendCall", "TERMINAL", "DEFAULT_RPC_TIMEOUT", "iso"]

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
DEFAULT_RPC_TIMEOUT = 4.0


def iso(epoch: float) -> str:
    """``2026-01-02T03:04:05.678Z`` for a wall-clock time."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


@dataclass
class BackendCall:
    """One RPC call the avatar made to a backend tool, and how often it was answered.

    ``answers`` counts every ``rpc_response`` the room received for the call, late or
    repeated ones included (a correct backend answers exactly once); ``error`` is what the
    avatar was told when it got no usable answer (``"Response timeout"``...).
    """

    id: str
    name: str
    answers: int = 0
    error: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "answers": self.answers, "error": self.error}


@dataclass
class EmulatedSession:
    """One realtime session and its conversation."""

    id: str
    body: dict[str, Any]
    plan: SessionPlan
    script: list[Step]
    created: float  # monotonic
    created_wall: float
    #: When the account's concurrency limit let it start provisioning (monotonic).
    admitted: float | None = None
    status: str = "NOT_READY"
    queued: bool = False
    session_key: str | None = None
    expires_at: str | None = None
    ready_at: float | None = None
    running_at: float | None = None
    ended_at: float | None = None
    duration: int | None = None
    failure: str | None = None
    failure_code: str | None = None
    consumed: bool = False
    ended_by: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    finalize_at: float | None = None
    room: Room | None = None
    polls: int = 0
    conversation_deleted: bool = False
    #: Backend tool calls by RPC request id, in call order.
    calls: dict[str, BackendCall] = field(default_factory=dict)

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or ())

    def tool_timeout(self, name: str) -> float:
        for tool in self.tools:
            if tool.get("name") == name and tool.get("type") == "backend_rpc":
                return float(tool.get("timeoutSeconds") or DEFAULT_RPC_TIMEOUT)
        return DEFAULT_RPC_TIMEOUT

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "createdAt": iso(self.created_wall),
            "status": self.status,
        }
        if self.status == "NOT_READY":
            out["queued"] = self.queued
        elif self.status == "READY":
            if not self.plan.ready_without_key:
                out["sessionKey"] = self.session_key
            out["expiresAt"] = self.expires_at
        elif self.status == "COMPLETED":
            out["duration"] = self.duration or 0
        elif self.status == "FAILED":
            out["failure"] = self.failure
            out["failureCode"] = self.failure_code
        return out

    def inventory(self) -> dict[str, Any]:
        """This session in ``GET /_emulator/sessions`` (emulator-only, no secrets)."""
        return {
            "id": self.id,
            "status": self.status,
            "createdAt": iso(self.created_wall),
            "endedBy": self.ended_by,
            "toolCalls": [call.to_wire() for call in self.calls.values()],
        }

    def conversation_status(self, now: float) -> str:
        if self.status not in TERMINAL or (self.finalize_at is not None and now < self.finalize_at):
            return "in_progress"
        return "failed" if self.status == "FAILED" else "ended"
