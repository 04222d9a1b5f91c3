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

**Where the parts live.** This module is the public API and the per-event loop (what a
session keeps for late subscribers and its result included). The session's own task
(provisioning, the call, the cancel path, the result) is :mod:`masquerade._session_run`;
the request and result models are in :mod:`masquerade._session_types`, the subscriber
buffers in :mod:`masquerade._subscribers`. The session reaches plugins only through its
:class:`~masquerade.runtime.SessionRuntime`.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ._redact import SecretScope
from ._session_run import SessionRun, Work, current_session
from ._session_types import DEFAULT_MAX_DURATION, SessionRequest, SessionResult, ToolCallRecord
from ._subscribers import EventStream, Subscriber
from .errors import EventParseError, SessionClosed, ToolDefinitionError
from .events import (
    BaseEvent,
    ClientEvent,
    ErrorEvent,
    JoinCredentials,
    ResponseDone,
    SessionState,
    ToolCall,
    ToolResult,
    parse_event,
    trusted_model,
)
from .tools import Tool, check_session_tools

if TYPE_CHECKING:
    from .provider import ProviderSession
    from .runtime import SessionRuntime

__all__ = [
    "DEFAULT_MAX_DURATION",
    "Session",
    "SessionRequest",
    "SessionResult",
    "ToolCallRecord",
    "EventStream",
    "current_session",
]

logger = logging.getLogger("masquerade.session")


class _SessionIds:
    """Session ids: a random per-process prefix (40 bits) and a counter, unique without
    a random draw per session; a forked child draws a prefix of its own."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = secrets.token_hex(5)
        self.counter = itertools.count(1)


_ids = _SessionIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.reset)


class Session(SessionRun):
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

    # Slots: thousands of sessions live at once (a dict of this many attributes costs
    # about 1.5 KiB each). ``__dict__`` stays for what a user adds (``max_buffer``).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_calls",
        "_cancel_path_ran",
        "_changed",
        "_client_events",
        "_closed",
        "_deadline",
        "_done",
        "_end_reason",
        "_ended",
        "_fatal",
        "_group",
        "_handle",
        "_kept",
        "_kept_seqs",
        "_observer_scope",
        "_observers_done",
        "_on_event",
        "_pending",
        "_pending_wakeup",
        "_pressured",
        "_provider_ended",
        "_records",
        "_room",
        "_scope",
        "_secrets",
        "_seq",
        "_subs",
        "_t0",
        "_usage",
        "_window",
        "_work",
        "credentials",
        "dropped_audio",
        "host",
        "id",
        "provider",
        "provider_session_id",
        "request",
        "result",
        "started_at",
        "state",
        "tools",
    )

    def __init__(
        self,
        host: SessionRuntime,
        request: SessionRequest,
        *,
        on_event: Callable[[BaseEvent], Any] | None = None,
    ) -> None:
        self.id = f"ses_{_ids.prefix}{next(_ids.counter):06x}"
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
        self._subs: list[Subscriber] = []
        # What a late subscriber is replayed: the compact record (always), and the last
        # ``request.history`` events when opted in; (sequence number, event) pairs.
        self._seq = 0
        self._kept: list[BaseEvent] = []
        self._kept_seqs: list[int] | None = [] if request.history else None  # with _window
        self._window: deque[tuple[int, BaseEvent]] | None = (
            deque(maxlen=request.history) if request.history else None
        )
        # The result's parts, created with their first entry.
        self._client_events: list[dict[str, Any]] | None = None
        # call id -> its answer (or the call being answered): a repeated id gets the same.
        self._calls: dict[str, ToolResult | _Running] | None = None
        self._records: dict[str, ToolCallRecord] | None = None
        self._usage: dict[str, Any] | None = None
        # Created when first needed: an idle session holds no queue, event or extra task.
        self._pending: deque[Awaitable[Any]] | None = None  # async observers' awaitables
        self._pending_wakeup: anyio.Event | None = None
        self._room: anyio.Event | None = None  # set when a lagging subscriber catches up
        self._changed: anyio.Event | None = None  # for wait_changed()
        self._deadline: list[Any] | None = None  # max_duration's entry in host.deadlines
        self._ended = False
        self._done: anyio.Event | None = None  # for wait(), set with _ended
        # The task group of the session's helper tasks (observer loop, provider tasks,
        # tool calls), given by whoever runs the session; it outlives the session's task.
        self._group: TaskGroup | None = None
        self._observers_done: anyio.Event | None = None
        self._observer_scope: anyio.CancelScope | None = None
        self._work: Work | None = None  # provider tasks and tool calls, while running
        self._closed = False
        self._scope: anyio.CancelScope | None = None
        self._end_reason: str | None = None
        self._fatal: ErrorEvent | None = None
        self._cancel_path_ran = False
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
        return self._ended

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
        if not self._ended:
            done = self._done
            if done is None:
                done = self._done = anyio.Event()
            await done.wait()
        assert self.result is not None
        return self.result

    async def wait_changed(self) -> None:
        """Wait until the session's :attr:`state` changes or it learns its
        :attr:`provider_session_id`; return at once when it has ended.

        For waiting on a condition of the session without subscribing to its events
        (no buffer, no wake-up per event)::

            while session.state not in ("running", "ended"):
                await session.wait_changed()
        """
        if self._closed:
            return
        changed = self._changed
        if changed is None:
            changed = self._changed = anyio.Event()
        await changed.wait()

    def _note_changed(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

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
        # Notify the runtime's observers inline: this is the per-event hot path.
        pending: list[Awaitable[Any]] | None = None
        for plugin_name, fn, argnames in self.host.observers_by_kind[kind]:
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
            if self._pending is None:
                self._pending = deque(pending)
            else:
                self._pending.extend(pending)
            if self._pending_wakeup is not None:
                self._pending_wakeup.set()
            elif self._observers_done is None and self._group is not None:
                self._start_observer_loop(self._group)
        pressure = False
        for sub in self._subs:
            if sub.push(event):
                pressure = True
        if pressure:
            self._pressured = True
        return pressure

    def _note(self, kind: str, event: BaseEvent) -> None:
        if kind in _KEPT:
            self._kept.append(event)
            if self._kept_seqs is not None:
                self._kept_seqs.append(self._seq)
        if kind == "error":
            assert isinstance(event, ErrorEvent)
            if event.fatal and self._fatal is None:
                self._fatal = event
                self.end("error")
        elif kind == "client_event":
            assert isinstance(event, ClientEvent)
            if self._client_events is None:
                self._client_events = []
            self._client_events.append({"name": event.name, "args": event.args})
        elif kind == "response.done":
            assert isinstance(event, ResponseDone)
            if event.usage:
                if self._usage is None:
                    self._usage = {}
                _add_usage(self._usage, event.usage)

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage summed over every ``response.done`` so far (read-only)."""
        if self._usage is None:
            self._usage = {}
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
        calls = self._calls
        if calls is None:
            calls = self._calls = {}
        seen = calls.get(call.call_id)
        if seen is not None:
            if type(seen) is _Running:
                done = seen.done
                if done is None:
                    done = seen.done = anyio.Event()
                await done.wait()
                seen = calls[call.call_id]
            else:
                await anyio.lowlevel.checkpoint()
            assert isinstance(seen, ToolResult)
            return seen
        running = calls[call.call_id] = _Running()
        self.emit(call)
        result: ToolResult | None = None
        found = self.tools.get(call.name)
        bound = (found.timeout if found is not None else 0.0) + self.request.hook_timeout
        if timeout is not None:
            bound = min(bound, timeout)
        try:
            result = await self.host.invoke_tool(call, self, bound)
        finally:
            if result is None:
                result = ToolResult(
                    call_id=call.call_id,
                    name=call.name,
                    error="the session ended before the tool finished",
                    error_type="cancelled",
                )
            calls[call.call_id] = result
            if self._records is None:
                self._records = {}
            # What the model is told is what is recorded: the record is made of the
            # answer's own (already checked) values.
            self._records[call.call_id] = trusted_model(ToolCallRecord, {
                "call_id": call.call_id, "name": call.name, "arguments": call.arguments,
                "output": result.output, "error": result.error,
                "error_type": result.error_type, "duration_ms": result.duration_ms,
            }, _RECORD_FIELDS)
            self.emit(result)
            if running.done is not None:
                running.done.set()
        return result

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
        """Run ``fn(*args)`` concurrently in the session's task group (for providers).

        An exception is reported as a non-fatal ``error`` event; cancellation at the end of
        the session is normal.
        """
        work = self._work
        if work is None or work.stopping or self._closed:
            raise SessionClosed(f"session {self.id} is not running")

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception as exc:
                logger.exception("background task %s of session %s raised", name, self.id)
                self.emit(ErrorEvent(code="task_failed", message=f"{name or fn}: {exc}"))

        work.start(guarded, name)

    # ---------------------------------------------------------------- internals
    def _subscribe(self, *, replay: bool) -> Subscriber:
        sub = Subscriber(self, self.audio_buffer, self.max_buffer)
        if replay:
            window = self._window
            first = window[0][0] if window else self._seq + 1  # (0 when not opted in)
            seqs = self._kept_seqs
            if seqs is None:
                sub.buffer.extend(self._kept)
            else:
                sub.buffer.extend(e for seq, e in zip(seqs, self._kept, strict=True) if seq < first)
            if window:
                sub.buffer.extend(event for _, event in window)
        if self._closed:
            sub.closed = True
        else:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subs:
            self._subs.remove(sub)


class _Running:
    """A tool call being answered; ``done`` is created by a repeated call that waits."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: anyio.Event | None = None


_RECORD_FIELDS = frozenset(ToolCallRecord.model_fields)
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


