"""A run as an async iterator of events: :class:`GraphStream`.

The engine (:func:`masquerade.graph._engine.execute`) runs in a task of the stream's
block and sends its events through a bounded memory stream; leaving the block cancels the
run, a live session through its cancel path.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Generic

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..builtin.tracing import workflow_span
from ..errors import GraphError
from ._engine import execute
from ._events import GraphEnded, GraphEvent
from ._state import StateT

if TYPE_CHECKING:
    from ..host import Host
    from ._graph import Graph

__all__ = ["GraphStream"]

_STREAM_BUFFER = 256


def _sender(
    send: MemoryObjectSendStream[GraphEvent | _Failed],
) -> Callable[[GraphEvent], Awaitable[None]]:
    """``send.send`` without a checkpoint per event while the buffer has room (session
    events arrive by the thousand); it waits only when the reader falls behind."""

    async def emit(event: GraphEvent) -> None:
        try:
            send.send_nowait(event)
        except anyio.WouldBlock:
            await send.send(event)

    return emit


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class GraphStream(Generic[StateT]):
    """One run of a graph, as an async iterator of :class:`~masquerade.GraphEvent`.

    Use it as an async context manager (``async with graph.stream(s) as events``) and
    iterate inside the block; leaving the block ends the run (cancelling what still
    runs). ``state`` holds the final state once the run has ended.
    """

    def __init__(
        self,
        graph: Graph[StateT],
        initial: StateT,
        host: Host | None,
        max_steps: int,
        session_events: bool,
    ) -> None:
        self.graph = graph
        self.initial = initial
        self.state: StateT | None = None
        self.steps = 0
        self._host = host
        self._max_steps = max_steps
        self._session_events = session_events
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[GraphEvent | _Failed] | None = None
        self._entered = False
        self._finished = False

    async def __aenter__(self) -> GraphStream[StateT]:
        if self._entered:
            raise GraphError("a graph stream can be entered only once", hint="call stream() again")
        self._entered = True
        from ..host import Host

        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            host = self._host if self._host is not None else Host()
            await stack.enter_async_context(host)
            send, receive = anyio.create_memory_object_stream[GraphEvent | _Failed](_STREAM_BUFFER)
            stack.push_async_callback(receive.aclose)
            self._receive = receive
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._tg.start_soon(self._engine, host, send, name=f"{self.graph.name} run")
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            # Close the run without handing it the exception: a task group would wrap it
            # in an ExceptionGroup, and the caller should see its NodeError as it is.
            await stack.aclose()
            return False
        return await stack.__aexit__(exc_type, exc, tb)

    async def _engine(self, host: Host, send: MemoryObjectSendStream[GraphEvent | _Failed]) -> None:
        async with send:
            started = time.monotonic()
            try:
                with workflow_span(self.graph.name, host=host):  # the run's root span
                    final, steps = await execute(
                        self.graph,
                        self.initial,
                        host,
                        _sender(send),
                        session_events=self._session_events,
                        max_steps=self._max_steps,
                    )
            except Exception as exc:
                await send.send(_Failed(exc))
                return
            self.state, self.steps = final, steps
            await send.send(
                GraphEnded(
                    state=final, steps=steps, duration_s=round(time.monotonic() - started, 6)
                )
            )

    def __aiter__(self) -> GraphStream[StateT]:
        if not self._entered:
            # Iterating without the block would leave the run's task group open across
            # the caller's code: breaking out of the loop could then never cancel the run
            # cleanly. The block makes the run's lifetime explicit (as httpx's stream()).
            raise GraphError(
                "graph.stream() must be used as a block",
                hint="write `async with graph.stream(state) as events:` and iterate over "
                "`events` inside it (or pass on_event= to graph.run)",
            )
        return self

    async def __anext__(self) -> GraphEvent:
        if self._receive is None:
            raise GraphError(
                "the graph stream is not running",
                hint="use `async with graph.stream(state) as events:` or `async for` on it",
            )
        if self._finished:
            raise StopAsyncIteration
        try:
            try:
                item = self._receive.receive_nowait()
            except anyio.WouldBlock:
                item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._finished = True
            raise StopAsyncIteration from None
        if isinstance(item, _Failed):
            self._finished = True
            raise item.error
        if isinstance(item, GraphEnded):
            self._finished = True
        return item
