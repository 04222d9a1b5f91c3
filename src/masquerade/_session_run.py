"""How a session runs, in its own task: provisioning, the call, the cancel path, the end.

:class:`SessionRun` is the half of :class:`~masquerade.Session` that its task executes
(``_run``, started by the host): create the provider session (shielded, bounded by
``provisioning_timeout``), wait for it through the runtime's poller, hand out the join
credentials, let the provider connect and feed events, then run the cancel path exactly
once, build the result and tell the runtime it ended. The other half (the public API,
the per-event loop, tool calls) is :mod:`masquerade.session`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel

from ._redact import use_secret_scope
from ._session_types import SessionResult
from .errors import MasqueradeError, ProvisioningTimeout, SessionFailed
from .events import (
    EndedEvent,
    ErrorEvent,
    Outcome,
    ReadyEvent,
    SessionState,
    StatusEvent,
    TranscriptDone,
    trusted_model,
)
from .provider import ProviderOutcome, TranscriptTurn

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from anyio.abc import TaskGroup

    from ._redact import SecretScope
    from ._session_types import SessionRequest, ToolCallRecord
    from ._subscribers import Subscriber
    from .events import BaseEvent, JoinCredentials
    from .host import Host
    from .provider import ProviderSession, ProvisioningStatus
    from .runtime import SessionRuntime
    from .session import Session

__all__ = ["SessionBlock", "SessionRun", "SessionTasks", "Work", "current_session"]

logger = logging.getLogger("masquerade.session")

# The session running in the current task, so that ``Provider.create`` (which gets only the
# request) can reach ``session.host.tool_schema`` and the session's merged tools. A weak
# reference: every timer and callback scheduled from the session's task keeps a copy of
# its context, and asyncio keeps a cancelled timer until it is due (``sleep_forever``:
# never) unless cancelled ones make up half of its queue; such a copy must not keep an
# ended session alive (it is freed by reference counting).
_current: ContextVar[weakref.ref[Session] | None] = ContextVar("masquerade_session", default=None)


def current_session() -> Session | None:
    """The :class:`~masquerade.Session` whose task is running (inside
    ``Provider.create``, ``poll``, ``connect``...), or ``None`` outside a session."""
    ref = _current.get()
    return ref() if ref is not None else None


class SessionBlock:
    """``async with host.session(request) as session``: the session's task runs in the
    host's task group (no task group per session: thousands of idle sessions share one);
    leaving the block ends the session (``cancelled`` when the block was cancelled) and
    waits for its result. A host that is not running is entered for the block."""

    __slots__ = ("_entered_host", "_host", "_session")

    def __init__(self, host: Host, session: Session) -> None:
        self._host = host
        self._session = session
        self._entered_host = False

    async def __aenter__(self) -> Session:
        host = self._host
        if not host.running:
            await host.__aenter__()
            self._entered_host = True
        tasks = host._session_tasks
        assert tasks is not None
        tasks.start(self._session)
        return self._session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        try:
            if not session.done:
                if exc is None:
                    session.end("closed")
                elif isinstance(exc, anyio.get_cancelled_exc_class()):
                    session.end("cancelled")
                else:
                    session.end("error")
            with anyio.CancelScope(shield=True):
                await session.wait()
        finally:
            if self._entered_host:
                self._entered_host = False
                await self._host.__aexit__(None, None, None)


class SessionTasks:
    """Where a running host runs its sessions' tasks.

    On asyncio each session's run is a plain asyncio task (an anyio task costs about
    2.5 KiB more, and a host holds thousands of idle sessions); :meth:`close` ends the
    ones still running (outcome ``cancelled``) and waits for them before the host's task
    group closes. On trio they are tasks of the host's group, cancelled with it. Either
    way helper tasks (observer loops, tool calls) start in the host's group.
    """

    __slots__ = ("_idle", "_native", "group")

    def __init__(self, group: TaskGroup) -> None:
        self.group = group
        try:
            asyncio.get_running_loop()
            native = True
        except RuntimeError:  # trio
            native = False
        self._native: dict[asyncio.Task[None], Session] | None = {} if native else None
        self._idle: anyio.Event | None = None

    def start(self, session: Session) -> None:
        native = self._native
        if native is None:
            self.group.start_soon(session._run, self.group)
            return
        task = asyncio.get_running_loop().create_task(session._run(self.group), name=RUN_NAME)
        native[task] = session
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        native = self._native
        assert native is not None
        native.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a session's task failed", exc_info=task.exception())
        if not native and self._idle is not None:
            self._idle.set()

    async def close(self) -> None:
        """End the sessions still running (``cancelled``) and wait until they ended."""
        native = self._native
        if not native:
            return
        for session in list(native.values()):
            session.end("cancelled")
        self._idle = anyio.Event()
        with anyio.CancelScope(shield=True):
            await self._idle.wait()


#: The name of a session's task (as anyio names it on trio).
RUN_NAME = "masquerade._session_run.SessionRun._run"


class Work:
    """A running session's provider tasks and tool calls (:meth:`Session.spawn
    <masquerade.Session.spawn>`).

    Each starts in the session's task group in a cancel scope of its own; :meth:`stop`
    cancels them all and waits until every one has finished, before the cancel path
    runs. An idle session that never starts one pays for no task group of its own.
    """

    __slots__ = ("count", "group", "idle", "scopes", "stopping")

    def __init__(self, group: TaskGroup) -> None:
        self.group = group
        self.scopes: set[anyio.CancelScope] | None = None
        self.count = 0  # started and not finished (started late ones included)
        self.stopping = False
        self.idle: anyio.Event | None = None

    def start(self, fn: Callable[[], Awaitable[Any]], name: str | None) -> None:
        self.count += 1
        self.group.start_soon(self._task, fn, name=name)

    async def _task(self, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            with anyio.CancelScope() as scope:
                if self.stopping:  # started after stop(): runs to its first checkpoint
                    scope.cancel()
                scopes = self.scopes
                if scopes is None:
                    scopes = self.scopes = set()
                scopes.add(scope)
                try:
                    await fn()
                finally:
                    scopes.discard(scope)
        finally:
            self.count -= 1
            if not self.count and self.idle is not None:
                self.idle.set()

    async def stop(self) -> None:
        """Cancel every task and wait until all have finished (shielded: this runs on
        the session's way out, cancelled or not)."""
        self.stopping = True
        for scope in list(self.scopes or ()):
            scope.cancel()
        if self.count:
            self.idle = anyio.Event()
            with anyio.CancelScope(shield=True):
                await self.idle.wait()


class SessionRun:
    """The session's own task (see the module docstring)."""

    if not TYPE_CHECKING:  # Session declares the slots; the type checker reads the list below
        __slots__ = ()

    if TYPE_CHECKING:  # what the run reads and writes of the session
        id: str
        host: SessionRuntime
        request: SessionRequest
        provider: str
        state: SessionState
        provider_session_id: str | None
        credentials: JoinCredentials | None
        result: SessionResult | None
        dropped_audio: int
        started_at: datetime
        _handle: ProviderSession | None
        _subs: list[Subscriber]
        _kept: list[BaseEvent]
        _records: dict[str, ToolCallRecord] | None
        _client_events: list[dict[str, Any]] | None
        _usage: dict[str, Any] | None
        _fatal: ErrorEvent | None
        _pending: deque[Awaitable[Any]] | None
        _pending_wakeup: anyio.Event | None
        _ended: bool
        _done: anyio.Event | None
        _group: TaskGroup | None
        _observers_done: anyio.Event | None
        _observer_scope: anyio.CancelScope | None
        _work: Work | None
        _closed: bool
        _scope: anyio.CancelScope | None
        _end_reason: str | None
        _cancel_path_ran: bool
        _secrets: SecretScope
        _provider_ended: bool | None
        _deadline: list[Any] | None

        @property
        def elapsed(self) -> float: ...

        def emit(self, event: BaseEvent) -> bool: ...

        def _note_changed(self) -> None: ...

    def _set_state(self, state: SessionState) -> None:
        self.state = state
        # Events are immutable and these carry nothing but the state: every session
        # shares one per state (each session keeps them for late subscribers).
        event = _STATE_EVENTS.get(state)
        if event is None:
            event = _STATE_EVENTS[state] = StatusEvent(state=state)
        self.emit(event)
        self._note_changed()

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
        # Awaits async observers' awaitables in order, off the provider's path. Cancelled
        # when the session's task ends (its group outlives it).
        assert self._observers_done is not None
        try:
            with anyio.CancelScope() as self._observer_scope:
                while True:
                    pending = self._pending
                    while pending:
                        awaitable = pending.popleft()
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
            self._observer_scope = None
            self._observers_done.set()

    async def _run(self, group: TaskGroup | None = None) -> None:
        """The session's task. ``group`` is where its helper tasks start (the observer
        loop, provider tasks, tool calls); it must outlive this task. Without one, the
        session opens its own."""
        if group is None:
            async with anyio.create_task_group() as own:
                await self._run(own)
            return
        reason = "completed"
        error: BaseException | None = None
        use_secret_scope(self._secrets)  # this task's own context: no reset needed
        self._group = group
        if self._pending:
            self._start_observer_loop(group)
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._end_reason is not None:
                    scope.cancel()
                # Tool calls and provider tasks are cancelled (and answered "cancelled")
                # before the cancel path runs.
                self._work = work = Work(group)
                try:
                    # No frame of the provisioning stays on the stack for the call.
                    handle = await self._provision()
                    await handle.connect(cast("Session", self))
                finally:
                    await work.stop()
            if scope.cancelled_caught:
                # Cancelled by end(), or past a deadline of this scope: the provisioning
                # deadline (while the state is still "provisioning") or max_duration.
                if self._end_reason is not None:
                    reason = self._end_reason
                elif self.state == "provisioning":
                    reason = "error"
                    error = ProvisioningTimeout(self.id, self.elapsed, queued=False)
                else:
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
            self._work = None
            if self._deadline is not None:
                self.host.deadlines.discard(self._deadline)
                self._deadline = None
            with anyio.CancelScope(shield=True):
                await self._finish(reason, error)
            error = None  # its traceback holds this frame: no cycle through self
            self._group = None
            if self._observer_scope is not None:
                self._observer_scope.cancel()

    async def _provision(self) -> ProviderSession:
        """Create the provider session, wait until it is ready, hand out the join
        credentials; returns the handle to connect (the bound of the call set)."""
        request = self.request
        self._set_state("provisioning")
        _current.set(weakref.ref(cast("Session", self)))  # this task's own context
        deadline = anyio.current_time() + request.provisioning_timeout
        # The create is shielded (bounded by the provisioning deadline): cancelling the
        # session meanwhile still reads the provider's answer, so the cancel path can end
        # a session the provider did create instead of leaving it running. Its bounds
        # are entries in the host's deadline heap, not timers of their own (asyncio keeps
        # a cancelled timer, with a copy of the context, until it is due).
        deadlines = self.host.deadlines
        with anyio.CancelScope(shield=True) as creating:
            bound = deadlines.add(deadline, creating.cancel)
            try:
                self._handle = await self.host.create_provider_session(request)
            finally:
                deadlines.discard(bound)
        handle = self._handle
        if handle is None:
            raise ProvisioningTimeout(self.id, self.elapsed, queued=False)
        self.provider_session_id = handle.id
        self._note_changed()
        # A cancellation held off by the shield lands here (no yield to the loop otherwise).
        await anyio.lowlevel.checkpoint_if_cancelled()
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
        # None is a valid answer (nothing for a frontend to join, e.g. a session
        # re-attached after its frontend joined); only running out of time fails. Past
        # the bound the session's scope is cancelled (no scope of its own) and _run
        # reports the ProvisioningTimeout (the state is still "provisioning").
        bound = deadlines.add(max(deadline, anyio.current_time() + 0.001), self._expire)
        try:
            self.credentials = await handle.join_credentials()
        finally:
            deadlines.discard(bound)
        self._set_state("ready")
        self.emit(trusted_model(ReadyEvent, {  # built from trusted values
            "type": "ready", "credentials": self.credentials, "waited_s": round(self.elapsed, 3)
        }, _READY_FIELDS))
        self._set_state("running")
        if request.max_duration is not None:
            # The call's bound: an entry in the host's deadline heap (no timer of its own,
            # see masquerade._deadlines), which cancels the session's scope; _run names
            # that end "deadline". The entry is discarded when the run ends.
            self._deadline = deadlines.add(
                anyio.current_time() + request.max_duration, self._expire
            )
        return handle

    def _expire(self) -> None:
        """A bound of the session's scope has passed: the provisioning deadline or
        ``max_duration`` (called by the host's deadlines task)."""
        scope = self._scope
        if scope is not None:
            scope.cancel()

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
        self._note_changed()
        if self._pending_wakeup is not None:
            self._pending_wakeup.set()
        if self._observers_done is not None:
            with anyio.move_on_after(self.request.end_timeout):
                await self._observers_done.wait()  # async observers see "ended" too, in order
        # Each implementation is bounded by hook_timeout.
        await self.host.notify_ended(cast("Session", self), self.result)
        for sub in self._subs:
            sub.close()
        self._subs.clear()
        self._secrets.release()
        self._ended = True
        if self._done is not None:
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
                for e in self._kept
                if isinstance(e, TranscriptDone)
            ],
            tool_calls=list(self._records.values()) if self._records else [],
            client_events=self._client_events or [],
            duration_s=outcome.duration_s
            if outcome.duration_s is not None
            else round(self.elapsed, 3),
            failure=failure,
            failure_code=failure_code,
            error=None if error is None else f"{type(error).__name__}: {error}",
            recording_url=outcome.recording_url,
            extra=dict(outcome.extra),
            usage=outcome.usage or self._usage or {},
            dropped_audio=self.dropped_audio,
            provider_ended=self._provider_ended,
            started_at=self.started_at,
            ended_at=datetime.now(UTC),
        )


_STATE_EVENTS: dict[str, StatusEvent] = {}
# Shared by every ready event (pydantic copies it before changing it; events are frozen).
_READY_FIELDS = frozenset({"credentials", "waited_s"})


def _unwrap(exc: Exception) -> Exception:
    # Task groups wrap a lone failure in an ExceptionGroup; report the failure itself.
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
