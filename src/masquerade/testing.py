"""Test doubles for masquerade and for your own tests.

:class:`ScriptedProvider` is a real in-process provider: it goes through provisioning
(optionally queued), becomes ready, plays a script of transcript turns, tool calls and
client events through the normal session loop, and records what the session did to it
(how often it was polled, every tool answer, every cancel-path call)::

    from masquerade import Host, SessionRequest
    from masquerade.testing import ScriptedProvider

    provider = ScriptedProvider([
        {"say": "Hello! What is your order number?"},
        {"say": "It is 42.", "role": "user"},
        {"tool": "lookup_order", "args": {"order_id": "42"}},
        {"say": "Your order ships tomorrow."},
    ])
    async with Host(plugins=[provider], load_entrypoints=False) as host:
        result = await host.run_session(
            SessionRequest(provider="scripted", tools=[lookup_order])
        )
    assert provider.sessions[0].ended == ["completed"]

Script steps (dicts, or the step models below):

===============================================  ===========================================
``{"say": text, "role": "assistant"}``           transcript deltas, then the finished turn
``{"tool": name, "args": {...}, "id": ...}``     a tool call; waits for the session's answer
``{"client_event": name, "args": {...}}``        a client event for the frontend
``{"audio": n, "bytes": 4800}``                  ``n`` audio deltas of that size
``{"wait": seconds}``                            pause
``{"event": {...}}``                             a raw event, parsed leniently
``{"fail": message}``                            the connection breaks (ProviderError)
``{"hangup": true}``                             the call ends here
===============================================  ===========================================
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import anyio
from pydantic import BaseModel, Field, SecretStr

from .errors import ProviderError
from .events import (
    AudioDelta,
    ClientEvent,
    JoinCredentials,
    ResponseDone,
    ResponseStarted,
    ToolCall,
    ToolResult,
    TranscriptDelta,
    TranscriptDone,
)
from .hookspecs import hookimpl
from .provider import ProviderOutcome, ProvisioningStatus
from .session import Session, SessionRequest

__all__ = [
    "ScriptedProvider",
    "ScriptedSession",
    "Say",
    "CallTool",
    "SendClientEvent",
    "Audio",
    "Wait",
    "RawEvent",
    "Fail",
    "Hangup",
    "Step",
    "parse_script",
]


class Say(BaseModel):
    say: str
    role: Literal["user", "assistant"] = "assistant"
    chunks: int = Field(default=3, ge=1)


class CallTool(BaseModel):
    tool: str
    args: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class SendClientEvent(BaseModel):
    client_event: str
    args: dict[str, Any] = Field(default_factory=dict)


class Audio(BaseModel):
    audio: int = Field(ge=1)
    bytes: int = Field(default=4800, ge=1)


class Wait(BaseModel):
    wait: float = Field(ge=0)


class RawEvent(BaseModel):
    event: Any


class Fail(BaseModel):
    fail: str
    code: str | None = None


class Hangup(BaseModel):
    hangup: bool = True


Step: TypeAlias = Say | CallTool | SendClientEvent | Audio | Wait | RawEvent | Fail | Hangup
_STEP_KEYS: dict[str, type[BaseModel]] = {
    "say": Say,
    "tool": CallTool,
    "client_event": SendClientEvent,
    "audio": Audio,
    "wait": Wait,
    "event": RawEvent,
    "fail": Fail,
    "hangup": Hangup,
}


def parse_script(steps: Iterable[Step | Mapping[str, Any]]) -> list[Step]:
    """Turn a list of dicts (or step models) into steps; unknown steps raise ValueError."""
    parsed: list[Step] = []
    for i, step in enumerate(steps):
        if isinstance(step, BaseModel):
            parsed.append(step)
            continue
        kinds = [k for k in step if k in _STEP_KEYS]
        if len(kinds) != 1:
            raise ValueError(
                f"script step {i} ({dict(step)!r}) must have exactly one of: "
                + ", ".join(_STEP_KEYS)
            )
        parsed.append(_STEP_KEYS[kinds[0]].model_validate(step))  # type: ignore[arg-type]
    return parsed


class ScriptedSession:
    """One scripted session; also the record tests assert against."""

    def __init__(self, provider: ScriptedProvider, request: SessionRequest, sid: str) -> None:
        self.provider = provider
        self.request = request
        self.id = sid
        self.requires_polling = provider.not_ready_polls > 0 or provider.queued_polls > 0 or (
            provider.final_status is not None
        )
        self.polls = 0
        self.ended: list[str] = []
        self.answers: list[ToolResult] = []
        self.connected = False

    async def poll(self) -> ProvisioningStatus:
        self.polls += 1
        p = self.provider
        if p.poll_errors:
            raise p.poll_errors.pop(0)
        if self.polls <= p.queued_polls:
            return ProvisioningStatus(state="not_ready", queued=True, provider_status="NOT_READY")
        if self.polls <= p.queued_polls + p.not_ready_polls:
            return ProvisioningStatus(state="not_ready", provider_status="NOT_READY")
        if p.final_status is not None:
            return p.final_status
        return ProvisioningStatus(state="ready", provider_status="READY")

    async def join_credentials(self) -> JoinCredentials:
        return JoinCredentials(
            provider=self.provider.name,
            kind="session_key",
            public={"sessionId": self.id},
            secrets={"sessionKey": SecretStr(f"scripted-session-key-{self.id}")},
        )

    async def connect(self, session: Session) -> None:
        self.connected = True
        turns = {"user": itertools.count(), "assistant": itertools.count()}
        call_ids = itertools.count(1)
        delay = self.provider.step_delay
        for step in self.provider.script:
            if delay:
                await anyio.sleep(delay)
            if isinstance(step, Say):
                turn = next(turns[step.role])
                if step.role == "assistant":
                    session.emit(ResponseStarted(response_id=f"resp_{turn}"))
                size = max(1, -(-len(step.say) // step.chunks))
                for start in range(0, len(step.say), size):
                    piece = step.say[start : start + size]
                    session.emit(TranscriptDelta(role=step.role, text=piece, turn=turn))
                session.emit(TranscriptDone(role=step.role, text=step.say, turn=turn))
                if step.role == "assistant":
                    session.emit(ResponseDone(response_id=f"resp_{turn}"))
            elif isinstance(step, CallTool):
                call = ToolCall(
                    call_id=step.id or f"call_{next(call_ids)}",
                    name=step.tool,
                    arguments=step.args,
                    kind="backend_rpc",
                )
                self.answers.append(await session.call_tool(call))
            elif isinstance(step, SendClientEvent):
                session.emit(ClientEvent(name=step.client_event, args=step.args))
            elif isinstance(step, Audio):
                chunk = base64.b64encode(bytes(step.bytes)).decode()
                for _ in range(step.audio):
                    await session.publish(AudioDelta(data=chunk))
            elif isinstance(step, Wait):
                await anyio.sleep(step.wait)
            elif isinstance(step, RawEvent):
                session.emit_raw(step.event)
            elif isinstance(step, Fail):
                raise ProviderError(step.fail, provider=self.provider.name, code=step.code)
            elif isinstance(step, Hangup):
                return
        if self.provider.hold_open:
            await anyio.sleep_forever()

    async def end(self, reason: str) -> None:
        self.ended.append(reason)
        if self.provider.end_error is not None:
            raise self.provider.end_error

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome()


class ScriptedProvider:
    """An in-process provider that plays a script (see the module docs).

    Args:
        script: the steps every session plays.
        name: the provider name to register (``"scripted"``).
        queued_polls: polls answered "queued" before provisioning continues.
        not_ready_polls: polls answered "not ready" (not queued) after that.
        final_status: answer every poll after those with this status instead of ready
            (e.g. ``ProvisioningStatus(state="failed", failure_code="...")``).
        poll_errors: exceptions raised by the first polls, in order.
        create_error: raised by ``create`` (nothing is created).
        end_error: raised by the cancel path (the session must still end cleanly).
        step_delay: seconds between script steps (for demos).
        hold_open: after the script, keep the call open until the session is ended.
    """

    tool_dialect = "openai"

    def __init__(
        self,
        script: Sequence[Step | Mapping[str, Any]] = (),
        *,
        name: str = "scripted",
        queued_polls: int = 0,
        not_ready_polls: int = 0,
        final_status: ProvisioningStatus | None = None,
        poll_errors: Sequence[BaseException] = (),
        create_error: BaseException | None = None,
        end_error: BaseException | None = None,
        step_delay: float = 0.0,
        hold_open: bool = False,
        on_create: Callable[[SessionRequest], None] | None = None,
    ) -> None:
        self.name = name
        self.script = parse_script(script)
        self.queued_polls = queued_polls
        self.not_ready_polls = not_ready_polls
        self.final_status = final_status
        self.poll_errors = list(poll_errors)
        self.create_error = create_error
        self.end_error = end_error
        self.step_delay = step_delay
        self.hold_open = hold_open
        self.on_create = on_create
        self.sessions: list[ScriptedSession] = []
        self._ids = itertools.count(1)

    @property
    def __name__(self) -> str:  # the plugin name when registered without one
        return f"{self.name}-provider"

    async def create(self, request: SessionRequest) -> ScriptedSession:
        if self.create_error is not None:
            raise self.create_error
        if self.on_create is not None:
            self.on_create(request)
        created = ScriptedSession(self, request, f"{self.name}-{next(self._ids)}")
        self.sessions.append(created)
        return created

    @hookimpl
    def masquerade_register_providers(self, register: Callable[[Any], None]) -> None:
        register(self)
