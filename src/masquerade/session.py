"""Sessions: one realtime call with a provider, from creation to its final result.

::

    request = SessionRequest(provider="runway", avatar="cooking-teacher", tools=[lookup_order])
    async with Host() as host:
        async with host.session(request) as session:
            async for event in session.events():
                if event.type == "ready":
                    send_to_browser(event.credentials.reveal())
        print(session.result.outcome, session.result.transcript)

States: ``created -> provisioning (queued or not) -> ready -> running -> ended``; the
outcome of an ended session is ``completed``, ``failed`` or ``cancelled``.

**The event loop.** Providers feed normalized events with :meth:`Session.emit`, a plain
synchronous call: no ``await`` per event. Each event goes to the
``masquerade_session_event`` observers, then into every subscriber's buffer.

**Backpressure.** Each subscriber (:meth:`Session.events`) has a bounded buffer.
Transcripts, tool calls and lifecycle events are never dropped. Audio deltas are dropped
(and counted in :attr:`Session.dropped_audio` and in the result) while a subscriber's
buffer holds ``audio_buffer`` events or more. If a subscriber falls ``max_buffer`` events
behind, :meth:`Session.emit` returns ``True`` and :meth:`Session.publish` waits until it
catches up, which slows the provider's reader instead of growing memory without bound.

**The cancel path.** :meth:`ProviderSession.end` runs exactly once on every exit of a
session (normal end, exception, cancellation, deadline) in a shielded scope bounded by
``end_timeout``, followed by the provider's final :meth:`~ProviderSession.result`.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._redact import SecretScope, use_secret_scope
from .errors import (
    EventParseError,
    MasqueradeError,
    ProvisioningTimeout,
    SessionClosed,
    SessionFailed,
    ToolDefinitionError,
)
from .events import (
    BaseEvent,
    ClientEvent,
    EndedEvent,
    ErrorEvent,
    JoinCredentials,
    Outcome,
    ReadyEvent,
    ResponseDone,
    SessionState,
    StatusEvent,
    ToolCall,
    ToolResult,
    TranscriptDone,
    parse_event,
)
from .provider import ProviderOutcome, ProvisioningStatus, TranscriptTurn
from .tools import Tool, as_tool, check_session_tools

if TYPE_CHECKING:
    from .provider import ProviderSession
    from .runtime import SessionRuntime

__all__ = ["Session", "SessionRequest", "SessionResult", "ToolCallRecord", "EventStream"]

logger = logging.getLogger("masquerade.session")

# The session running in the current task, so that ``Provider.create`` (which gets only the
# request) can reach ``session.host.tool_schema`` and the session's merged tools.
_current: ContextVar[Session | None] = ContextVar("masquerade_session", default=None)


def current_session() -> Session | None:
    """The :class:`Session` whose task is running (inside ``Provider.create``, ``poll``,
    ``connect``...), or ``None`` outside a session."""
    return _current.get()


#: The deadline of a session that does not set ``max_duration`` (seconds).
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
    started_at: datetime
    ended_at: datetime

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"

    @property
    def text(self) -> str:
        """The transcript as ``role: text`` lines."""
        return "\n".join(f"{t.role}: {t.text}" for t in self.transcript if t.text)


class _Subscriber:
    __slots__ = ("audio_limit", "buffer", "closed", "dropped", "hard_limit", "session", "waiter")

    def __init__(self, session: Session, audio_limit: int, hard_limit: int) -> None:
        self.session = session
        self.buffer: deque[BaseEvent] = deque()
        self.audio_limit = audio_limit
        self.hard_limit = hard_limit
        self.waiter: anyio.Event | None = None
        self.closed = False
        self.dropped = 0

    def push(self, event: BaseEvent) -> bool:
        buffer = self.buffer
        if event.type == "audio.delta" and len(buffer) >= self.audio_limit:
            self.dropped += 1
            self.session.dropped_audio += 1
            return False
        buffer.append(event)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()
        return len(buffer) >= self.hard_limit

    def close(self) -> None:
        self.closed = True
        room = self.session._room
        if room is not None:
            self.session._room = None
            room.set()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()


class EventStream:
    """An async iterator over a session's events (see :meth:`Session.events`).

    It ends after the ``ended`` event. Close it (``await stream.aclose()``, or use it as an
    async context manager) when you stop reading early, so it stops buffering.
    """

    def __init__(self, session: Session, *, replay: bool) -> None:
        self._session = session
        self._replay = replay
        self._sub: _Subscriber | None = None

    @property
    def dropped_audio(self) -> int:
        """Audio deltas this subscriber missed because it fell behind."""
        return self._sub.dropped if self._sub else 0

    def _subscribe(self) -> _Subscriber:
        sub = self._session._subscribe(replay=self._replay)
        self._sub = sub
        return sub

    def __aiter__(self) -> EventStream:
        if self._sub is None:
            self._subscribe()
        return self

    async def __anext__(self) -> BaseEvent:
        sub = self._sub or self._subscribe()
        while True:
            if sub.buffer:
                room = self._session._room
                if room is not None and len(sub.buffer) <= sub.hard_limit // 2:
                    self._session._room = None
                    room.set()
                return sub.buffer.popleft()
            if sub.closed:
                raise StopAsyncIteration
            waiter = sub.waiter = anyio.Event()
            await waiter.wait()

    async def aclose(self) -> None:
        if self._sub is not None:
            self._session._unsubscribe(self._sub)
            self._sub.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Session:
    """One realtime session. Create it with :meth:`Host.session` or
    :meth:`Host.run_session`, not directly.

    Attributes:
        id: masquerade's id for the session (``ses_...``).
        host: the :class:`~masquerade.runtime.SessionRuntime` running it (the
            :class:`~masquerade.Host`); the session reaches plugins only through it.
        request: the :class:`SessionRequest`.
        state: ``created``, ``provisioning``, ``ready``, ``running`` or ``ended``.
        provider_session_id: the provider's id, once created.
        credentials: the frontend's :class:`~masquerade.JoinCredentials`, once ready.
        tools: the session's tools by name (the request's plus the plugins').
        result: the :class:`SessionResult`, once ended.
    """

    audio_buffer = 256
    max_buffer = 8192

    def __init__(
        self,
        host: SessionRuntime,
        request: SessionRequest,
        *,
        on_event: Callable[[BaseEvent], Any] | None = None,
    ) -> None:
        self.id = f"ses_{uuid.uuid4().hex[:16]}"
        self.host = host
        self.request = request
        self.provider = request.provider
        self.state: SessionState = "created"
        self.provider_session_id: str | None = None
        self.credentials: JoinCredentials | None = None
        self.result: SessionResult | None = None
        self.dropped_audio = 0
        self.tools: dict[str, Tool] = self._merge_tools(request.tools, host.tools)
        self.started_at = datetime.now(UTC)
        self._t0 = time.monotonic()
        self._on_event = on_event
        self._handle: ProviderSession | None = None
        self._subs: list[_Subscriber] = []
        # What a late subscriber is replayed: the compact record (always), and the last
        # ``request.history`` events when opted in; (sequence number, event) pairs.
        self._seq = 0
        self._kept: list[tuple[int, BaseEvent]] = []
        self._window: deque[tuple[int, BaseEvent]] | None = (
            deque(maxlen=request.history) if request.history else None
        )
        self._client_events: list[dict[str, Any]] = []
        self._calls: dict[str, tuple[anyio.Event, list[ToolResult]]] = {}
        self._records: dict[str, ToolCallRecord] = {}
        self._usage: dict[str, Any] = {}
        self._pending: deque[Awaitable[Any]] = deque()
        self._pending_wakeup: anyio.Event | None = None
        self._room: anyio.Event | None = None  # set when a lagging subscriber catches up
        self._done = anyio.Event()
        # Started on the first async observer's awaitable (the built-ins are synchronous).
        self._observers: TaskGroup | None = None
        self._observers_done: anyio.Event | None = None
        self._closed = False
        self._scope: anyio.CancelScope | None = None
        self._end_reason: str | None = None
        self._fatal: ErrorEvent | None = None
        self._cancel_path_ran = False
        self._tg: TaskGroup | None = None
        self._secrets = SecretScope()  # session keys, room tokens: released at the end
        self._provider_ended: bool | None = None
        self._pressured = False  # a subscriber reached max_buffer since the last check

    @staticmethod
    def _merge_tools(own: tuple[Tool, ...], plugin_tools: Mapping[str, Tool]) -> dict[str, Tool]:
        tools = {t.name: t for t in own}
        for name, t in plugin_tools.items():
            if name in tools and tools[name] is not t:
                raise ToolDefinitionError(
                    f"tool {name!r} of the session clashes with a tool of the same name "
                    "offered by a plugin",
                    hint="rename one of them with @tool(name=...), or disable the plugin",
                )
            tools[name] = t
        check_session_tools(tools.values(), source="the session (with its plugins' tools)")
        return tools

    def __repr__(self) -> str:
        return (
            f"<Session {self.id} provider={self.provider!r} state={self.state!r} "
            f"provider_session_id={self.provider_session_id!r}>"
        )

    # ---------------------------------------------------------------- public
    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def events(self, *, replay: bool = True) -> EventStream:
        """Iterate over the session's events until ``ended``.

        Several subscribers may read at once; each gets every event. With ``replay``
        (the default), a subscriber first receives what it missed: the lifecycle events,
        finished transcript turns, tool calls and results, client events and errors (or,
        with ``SessionRequest.history``, the last events of every kind but audio), so
        subscribing late never loses a transcript or a tool call.
        """
        return EventStream(self, replay=replay)

    async def wait(self) -> SessionResult:
        """Wait for the session to end; return its result."""
        await self._done.wait()
        assert self.result is not None
        return self.result

    def end(self, reason: str = "ended") -> None:
        """Ask the session to end now. Its cancel path runs (for Runway: ``END_CALL``,
        falling back to ``DELETE``); :meth:`wait` returns the result."""
        if self._end_reason is None:
            self._end_reason = reason
        if self._scope is not None:
            self._scope.cancel()

    def emit(self, event: BaseEvent) -> bool:
        """Deliver one normalized event: observers first, then subscribers.

        Synchronous, with no checkpoint, so providers can call it per audio frame.
        Returns ``True`` when a subscriber is ``max_buffer`` events behind (see
        :meth:`publish`). Events after ``ended`` are ignored.
        """
        if self._closed:
            return False
        kind = event.type
        if kind != "audio.delta":
            window = self._window
            if window is not None:  # opted-in history: every event but audio, numbered
                self._seq += 1
                window.append((self._seq, event))
            if kind in _NOTED:  # the compact record and the result's parts (rare kinds)
                self._note(kind, event)
        # Observer dispatch, inlined from Host.notify_event: this is the per-event hot path.
        pending: list[Awaitable[Any]] | None = None
        for plugin_name, fn, argnames in self.host.event_observers:
            try:
                if argnames == _SESSION_EVENT:
                    value = fn(self, event)
                else:
                    value = fn(*[self if a == "session" else event for a in argnames])
            except Exception:
                _observer_failed(plugin_name, kind)
                continue
            if value is not None:
                if pending is None:
                    pending = []
                pending.append(self.host.isolate(plugin_name, value))
        if self._on_event is not None:
            try:
                value = self._on_event(event)
            except Exception:
                logger.exception("on_event callback raised on a %s event", kind)
            else:
                if value is not None:
                    if inspect.isawaitable(value):
                        pending = [*(pending or ()), self.host.isolate("on_event", value)]
                    else:
                        logger.warning(
                            "on_event callback returned %s (not an awaitable) on a %s "
                            "event; it was ignored", type(value).__name__, kind
                        )
        if pending:
            self._pending.extend(pending)
            if self._pending_wakeup is not None:
                self._pending_wakeup.set()
            elif self._observers_done is None and self._observers is not None:
                self._start_observer_loop(self._observers)
        pressure = False
        for sub in self._subs:
            if sub.push(event):
                pressure = True
        if pressure:
            self._pressured = True
        return pressure

    def _note(self, kind: str, event: BaseEvent) -> None:
        if kind in _KEPT:
            self._kept.append((self._seq, event))
        if kind == "error":
            assert isinstance(event, ErrorEvent)
            if event.fatal and self._fatal is None:
                self._fatal = event
                self.end("error")
        elif kind == "client_event":
            assert isinstance(event, ClientEvent)
            self._client_events.append({"name": event.name, "args": event.args})
        elif kind == "response.done":
            assert isinstance(event, ResponseDone)
            if event.usage:
                _add_usage(self._usage, event.usage)

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage summed over every ``response.done`` so far (read-only)."""
        return self._usage

    async def publish(self, event: BaseEvent) -> None:
        """:meth:`emit`, then wait while a subscriber is too far behind."""
        if self.emit(event):
            await self.backpressure()

    @property
    def under_pressure(self) -> bool:
        """Whether a subscriber is ``max_buffer`` events behind (cheap: providers check it
        per frame and then ``await`` :meth:`backpressure`)."""
        if not self._pressured:  # the common case: one attribute read per frame
            return False
        still = any(len(s.buffer) >= s.hard_limit and not s.closed for s in self._subs)
        if not still:
            self._pressured = False
        return still

    async def backpressure(self) -> None:
        """Wait while a subscriber is ``max_buffer`` events behind. Every waiting publisher
        shares one wake-up, so all of them resume when the reader catches up."""
        while self.under_pressure:
            room = self._room
            if room is None:
                room = self._room = anyio.Event()
            await room.wait()

    def emit_raw(self, data: Mapping[str, Any] | str | bytes) -> BaseEvent:
        """Parse a normalized event leniently and emit it. A malformed event becomes a
        non-fatal ``error`` event (code ``malformed_event``) carrying the raw payload."""
        try:
            event = parse_event(data)
        except EventParseError as exc:
            event = ErrorEvent(code="malformed_event", message=exc.message, raw=exc.raw)
        self.emit(event)
        return event

    async def call_tool(self, call: ToolCall, *, timeout: float | None = None) -> ToolResult:
        """Answer a tool call through the ``masquerade_tool_invoke`` chain.

        Emits the ``tool.call`` event, runs the chain, emits exactly one ``tool.result``
        and returns it for the provider to deliver. Never raises for a tool failure; a
        repeated ``call_id`` gets the first call's answer without running the tool again.
        If the session is cancelled meanwhile, a ``cancelled`` result is still emitted.

        The whole chain is bounded by the tool's ``timeout`` plus the request's
        ``hook_timeout`` (a hanging wrapper included), or by ``timeout`` when the provider
        must answer sooner (Runway's ``responseTimeout``): past it, the call is cancelled
        and answered with a ``timeout`` error, and that same answer is recorded.
        """
        seen = self._calls.get(call.call_id)
        if seen is not None:
            await seen[0].wait()
            return seen[1][0]
        finished = anyio.Event()
        box: list[ToolResult] = []
        self._calls[call.call_id] = (finished, box)
        self.emit(call)
        result: ToolResult | None = None
        found = self.tools.get(call.name)
        bound = (found.timeout if found is not None else 0.0) + self.request.hook_timeout
        if timeout is not None:
            bound = min(bound, timeout)
        try:
            with anyio.move_on_after(bound) as scope:
                result = await self.host.invoke_tool(call, self)
            if scope.cancelled_caught and result is None:
                result = ToolResult(
                    call_id=call.call_id,
                    name=call.name,
                    error=f"tool {call.name!r} did not answer within {bound:.2f}s",
                    error_type="timeout",
                )
        finally:
            if result is None:
                result = ToolResult(
                    call_id=call.call_id,
                    name=call.name,
                    error="the session ended before the tool finished",
                    error_type="cancelled",
                )
            box.append(result)
            self._records[call.call_id] = ToolCallRecord(
                call_id=call.call_id,
                name=call.name,
                arguments=call.arguments,
                output=result.output,
                error=result.error,
                error_type=result.error_type,
                duration_ms=result.duration_ms,
            )
            self.emit(result)
            finished.set()
        return result

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
        """Run ``fn(*args)`` concurrently in the session's task group (for providers).

        An exception is reported as a non-fatal ``error`` event; cancellation at the end of
        the session is normal.
        """
        if self._tg is None or self._closed:
            raise SessionClosed(f"session {self.id} is not running")

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception as exc:
                logger.exception("background task %s of session %s raised", name, self.id)
                self.emit(ErrorEvent(code="task_failed", message=f"{name or fn}: {exc}"))

        self._tg.start_soon(guarded, name=name)

    # ---------------------------------------------------------------- internals
    def _subscribe(self, *, replay: bool) -> _Subscriber:
        sub = _Subscriber(self, self.audio_buffer, self.max_buffer)
        if replay:
            window = self._window
            first = window[0][0] if window else self._seq + 1  # (0 when not opted in)
            sub.buffer.extend(event for seq, event in self._kept if seq < first)
            if window:
                sub.buffer.extend(event for _, event in window)
        if self._closed:
            sub.closed = True
        else:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: _Subscriber) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def _set_state(self, state: SessionState, **fields: Any) -> None:
        self.state = state
        self.emit(StatusEvent(state=state, **fields))

    def _on_provisioning_status(self, status: ProvisioningStatus) -> None:
        self.emit(
            StatusEvent(
                state="provisioning",
                provider_status=status.provider_status,
                queued=status.queued,
                waited_s=round(self.elapsed, 3),
            )
        )

    def _start_observer_loop(self, tg: TaskGroup) -> None:
        self._observers_done = anyio.Event()
        tg.start_soon(self._observer_loop)

    async def _observer_loop(self) -> None:
        # Awaits async observers' awaitables in order, off the provider's path.
        assert self._observers_done is not None
        try:
            while True:
                while self._pending:
                    awaitable = self._pending.popleft()
                    with anyio.move_on_after(self.request.hook_timeout) as bound:
                        await awaitable
                    if bound.cancelled_caught:
                        logger.error(
                            "an async observer of session %s did not finish within %gs "
                            "(hook_timeout); it was cancelled", self.id,
                            self.request.hook_timeout,
                        )
                if self._closed:
                    return
                self._pending_wakeup = anyio.Event()
                await self._pending_wakeup.wait()
        finally:
            self._observers_done.set()

    async def _run(self) -> None:
        reason = "completed"
        error: BaseException | None = None
        use_secret_scope(self._secrets)  # this task's own context: no reset needed
        async with anyio.create_task_group() as tg:
            self._observers = tg
            if self._pending:
                self._start_observer_loop(tg)
            try:
                with anyio.CancelScope() as scope:
                    self._scope = scope
                    if self._end_reason is not None:
                        scope.cancel()
                    # Tool calls and provider tasks run in this inner group, so that they
                    # are cancelled (and answered "cancelled") before the cancel path runs.
                    async with anyio.create_task_group() as work:
                        self._tg = work
                        await self._provision_and_connect()
                        work.cancel_scope.cancel()
                if scope.cancelled_caught:
                    reason = self._end_reason or "ended"
                elif self._end_reason == "deadline":
                    reason = "deadline"
            except anyio.get_cancelled_exc_class():
                reason = "cancelled"
                raise
            except Exception as exc:
                reason, error = "error", _unwrap(exc)
                if not isinstance(error, MasqueradeError):
                    logger.exception("session %s failed", self.id)
            finally:
                self._scope = None
                self._tg = None
                with anyio.CancelScope(shield=True):
                    await self._finish(reason, error)
                error = None  # its traceback holds this frame: no cycle through self
                self._observers = None
                tg.cancel_scope.cancel()

    async def _provision_and_connect(self) -> None:
        request = self.request
        self._set_state("provisioning")
        _current.set(self)  # this task's own context: no reset needed
        deadline = anyio.current_time() + request.provisioning_timeout
        # The create is shielded (bounded by the provisioning deadline): cancelling the
        # session meanwhile still reads the provider's answer, so the cancel path can end
        # a session the provider did create instead of leaving it running.
        with anyio.CancelScope(shield=True, deadline=deadline):
            self._handle = await self.host.create_provider_session(request)
        handle = self._handle
        if handle is None:
            raise ProvisioningTimeout(self.id, self.elapsed, queued=False)
        self.provider_session_id = handle.id
        await anyio.lowlevel.checkpoint()  # a cancellation held off by the shield lands here
        if handle.requires_polling:
            status = await self.host.poller.wait_ready(
                handle,
                session_id=self.id,
                provider=self.provider,
                timeout=max(0.001, deadline - anyio.current_time()),
                on_status=self._on_provisioning_status,
            )
            if status.terminal:
                raise SessionFailed(
                    f"session {handle.id} ended while provisioning: "
                    f"{status.provider_status or status.state}"
                    + (f" ({status.failure})" if status.failure else ""),
                    failure_code=status.failure_code,
                    hint="check failure_code against the provider's documentation",
                )
        with anyio.move_on_after(max(0.001, deadline - anyio.current_time())) as waiting:
            # None is a valid answer (nothing for a frontend to join, e.g. a session
            # re-attached after its frontend joined); only running out of time fails.
            self.credentials = await handle.join_credentials()
        if waiting.cancelled_caught:
            raise ProvisioningTimeout(self.id, self.elapsed, queued=False)
        self._set_state("ready")
        self.emit(ReadyEvent(credentials=self.credentials, waited_s=round(self.elapsed, 3)))
        self._set_state("running")
        if request.max_duration is None:
            await handle.connect(self)
            return
        # The deadline's timer keeps a copy of the current context until it would have
        # fired: it must not keep the session (an ended session is freed by refcount).
        _current.set(None)
        with anyio.move_on_after(request.max_duration) as limit:
            _current.set(self)
            await handle.connect(self)
        if limit.cancelled_caught and self._end_reason is None:
            self._end_reason = "deadline"

    async def _finish(self, reason: str, error: BaseException | None) -> None:
        if self._cancel_path_ran:  # exactly once, whatever called it
            return
        self._cancel_path_ran = True
        handle = self._handle
        outcome = ProviderOutcome()
        if handle is not None:
            self._provider_ended = False
            with anyio.move_on_after(self.request.end_timeout) as scope:
                try:
                    await handle.end(reason)
                    self._provider_ended = True
                except Exception as exc:
                    self._unended(f"cancel path: {exc}", "end_failed")
            if scope.cancelled_caught:
                self._unended(
                    f"the cancel path did not finish within {self.request.end_timeout:g}s "
                    "(end_timeout)", "end_timeout"
                )
            with anyio.move_on_after(self.request.end_timeout):
                try:
                    outcome = await handle.result()
                except Exception as exc:
                    logger.warning("fetching the result of session %s failed: %s", self.id, exc)
            self._handle = None  # the provider session may refer back to this one
        self.result = self._build_result(reason, error, outcome)
        self.emit(
            EndedEvent(
                outcome=self.result.outcome,
                reason=reason,
                duration_s=self.result.duration_s,
                failure_code=self.result.failure_code,
                failure=self.result.failure,
            )
        )
        self.state = "ended"
        self._closed = True
        if self._pending_wakeup is not None:
            self._pending_wakeup.set()
        if self._observers_done is not None:
            with anyio.move_on_after(self.request.end_timeout):
                await self._observers_done.wait()  # async observers see "ended" too, in order
        await self.host.notify_ended(self, self.result)  # each bounded by hook_timeout
        for sub in self._subs:
            sub.close()
        self._subs.clear()
        self._secrets.release()
        self._done.set()

    def _unended(self, message: str, code: str) -> None:
        # Loud on purpose: a session the provider may still run (and bill).
        logger.error(
            "could not end session %s (provider session %s) at the provider; it may still "
            "be running there: %s", self.id, self.provider_session_id, message,
        )
        self.emit(ErrorEvent(code=code, message=message))

    def _build_result(
        self, reason: str, error: BaseException | None, outcome: ProviderOutcome
    ) -> SessionResult:
        failure = outcome.failure
        failure_code = outcome.failure_code
        if error is not None:
            result_outcome: Outcome = "failed"
            message = error.message if isinstance(error, MasqueradeError) else str(error)
            failure = failure or message
            failure_code = failure_code or getattr(error, "failure_code", None) or getattr(
                error, "code", None
            )
        elif self._fatal is not None:
            result_outcome = "failed"
            failure = failure or self._fatal.message
            failure_code = failure_code or self._fatal.code
        elif reason == "cancelled":
            result_outcome = "cancelled"
        else:
            result_outcome = outcome.outcome or "completed"
        return SessionResult(
            session_id=self.id,
            provider=self.provider,
            provider_session_id=self.provider_session_id,
            outcome=result_outcome,
            reason=reason,
            transcript=outcome.transcript
            if outcome.transcript is not None
            else [
                TranscriptTurn(role=e.role, text=e.text)
                for _, e in self._kept
                if isinstance(e, TranscriptDone)
            ],
            tool_calls=list(self._records.values()),
            client_events=self._client_events,
            duration_s=outcome.duration_s
            if outcome.duration_s is not None
            else round(self.elapsed, 3),
            failure=failure,
            failure_code=failure_code,
            error=None if error is None else f"{type(error).__name__}: {error}",
            recording_url=outcome.recording_url,
            usage=outcome.usage or self._usage,
            dropped_audio=self.dropped_audio,
            provider_ended=self._provider_ended,
            started_at=self.started_at,
            ended_at=datetime.now(UTC),
        )


_SESSION_EVENT = ("session", "event")
# The compact record every session keeps (see ``SessionRequest.history``).
_KEPT = frozenset(
    {"status", "ready", "transcript.done", "tool.call", "tool.result", "client_event",
     "error", "ended"}
)
_NOTED = _KEPT | {"response.done"}


def _observer_failed(plugin_name: str, kind: str) -> None:
    logging.getLogger("masquerade.host").exception(
        "observer %s raised on a %s event; it was skipped", plugin_name, kind
    )


def _unwrap(exc: Exception) -> Exception:
    # Task groups wrap a lone failure in an ExceptionGroup; report the failure itself.
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _add_usage(total: dict[str, Any], usage: Mapping[str, Any]) -> None:
    # Exact type checks first: an ABC isinstance per counter would cost more than the sum.
    for key, value in usage.items():
        kind = type(value)
        if kind is int or kind is float:
            total[key] = total.get(key, 0) + value
        elif kind is dict or (isinstance(value, Mapping) and kind is not str):
            inner = total.get(key)
            if type(inner) is not dict:
                inner = total[key] = {}
            _add_usage(inner, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


