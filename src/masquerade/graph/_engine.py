"""The graph engine: building a graph, validating it, and running it in supersteps.

A run proceeds in *steps*. Each step runs a set of nodes concurrently (one anyio task
each) against the same state; when all of them have finished, their updates are merged
(reducers, see :mod:`masquerade.graph._state`) and the edges leaving them decide the next
set. A node reached by several edges in one step runs once. ``add_edge(["a", "b"], "c")``
is a join: ``c`` runs once both ``a`` and ``b`` have finished. The run ends when no node
is scheduled.

When a node raises, the other nodes of its step are cancelled (a running session ends
through its cancel path) and the run raises :class:`~masquerade.NodeError` naming it.
"""

from __future__ import annotations

import functools
import inspect
import time
import typing
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..builtin.tracing import node_span, workflow_span
from ..errors import GraphError, GraphValidationError, NodeError
from ._events import GraphEnded, GraphEvent, NodeFinished, NodeStarted
from ._state import StateSchema, StateT
from ._validate import END, START, validate_graph

if TYPE_CHECKING:
    from ..host import Host

__all__ = ["Graph", "GraphStream", "RunContext", "current_run", "START", "END"]

#: Steps a run may take beyond its number of nodes before it is stopped as a runaway loop.
DEFAULT_MAX_STEPS = 100
_STREAM_BUFFER = 256


@dataclass(frozen=True)
class RunContext:
    """What a node running inside :class:`Graph` can reach (see :func:`current_run`).

    Attributes:
        host: the running :class:`~masquerade.Host`.
        node: the node's name.
        step: the current step (1-based).
        emit: sends an event to the run's stream, or ``None`` when nobody streams
            (``graph.run``), so nodes can skip the work of building events.
    """

    host: Host
    node: str
    step: int
    emit: Callable[[GraphEvent], Awaitable[None]] | None


_current_run: ContextVar[RunContext | None] = ContextVar("masquerade_graph_run", default=None)


def current_run() -> RunContext | None:
    """The :class:`RunContext` of the graph node running in this task, if any."""
    return _current_run.get()


def _unwrap(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` returns a coroutine (functions, partials, objects with an
    ``async def __call__``)."""
    target = _unwrap(fn)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004 - we need the attribute itself
    return call is not None and inspect.iscoroutinefunction(call)


def _callable_name(fn: Any) -> str:
    target = _unwrap(fn)
    return str(getattr(target, "__name__", None) or type(target).__name__)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    fn: Callable[[Any], Any]
    is_async: bool
    output_keys: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Branch:
    """A conditional edge: ``router(state)`` picks the next node(s)."""

    source: str
    router: Callable[[Any], Any]
    mapping: Mapping[Hashable, str] | None
    #: every node the router may pick, or ``None`` when it is not known (may be any)
    destinations: frozenset[str] | None
    is_async: bool = False

    async def route(self, state: Any) -> list[str]:
        try:
            choice = self.router(state)
            if inspect.isawaitable(choice):
                choice = await choice
        except Exception as exc:
            raise GraphError(
                f"the router after node {self.source!r} ({_callable_name(self.router)}) raised "
                f"{type(exc).__name__}: {exc}",
                hint="see the chained exception for the router's traceback",
            ) from exc
        choices = list(choice) if isinstance(choice, list | tuple | set | frozenset) else [choice]
        picked: list[str] = []
        for value in choices:
            target = self._resolve(value)
            if target not in picked:
                picked.append(target)
        return picked

    def _resolve(self, value: Any) -> str:
        if self.mapping is not None:
            try:
                return self.mapping[value]
            except (KeyError, TypeError):
                allowed = ", ".join(repr(k) for k in self.mapping)
                raise GraphError(
                    f"the router after node {self.source!r} returned {value!r}, which is not "
                    f"one of its branches ({allowed})",
                    hint="return one of those keys, or add the value to the mapping",
                ) from None
        if isinstance(value, str) and (
            self.destinations is None or value in self.destinations or value == END
        ):
            return value
        allowed = ", ".join(repr(d) for d in sorted(self.destinations or ()))
        raise GraphError(
            f"the router after node {self.source!r} returned {value!r}, which is not a node"
            + (f" it may go to ({allowed})" if self.destinations else ""),
            hint="return a node name or END (or a list of them)",
        )


def _literal_destinations(router: Callable[..., Any]) -> frozenset[str] | None:
    """Destinations declared by a ``-> Literal["a", "b"]`` return annotation."""
    try:
        hints = typing.get_type_hints(_unwrap(router))
    except Exception:
        return None
    ret = hints.get("return")
    if ret is None:
        return None
    args: list[Any] = []
    pending = [ret]
    while pending:
        current = pending.pop()
        origin = typing.get_origin(current)
        if origin is Literal:
            args.extend(typing.get_args(current))
        elif origin in (typing.Union, list, tuple, set, frozenset) or (
            origin is not None and str(origin) == "types.UnionType"
        ):
            pending.extend(typing.get_args(current))
        elif isinstance(current, type) and issubclass(current, type(None)):
            continue
        else:
            return None  # a plain str or anything else: unknown destinations
    if not args or not all(isinstance(a, str) for a in args):
        return None
    return frozenset(args)


@dataclass
class _Wiring:
    """The edges of a graph, grouped the way the engine reads them."""

    edges: dict[str, list[str]] = field(default_factory=dict)
    joins: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    branches: dict[str, list[Branch]] = field(default_factory=dict)


class Graph(Generic[StateT]):
    """A workflow over a typed state: nodes, edges, conditional edges.

    ::

        class State(BaseModel):
            order_id: str
            notes: Annotated[list[str], operator.add] = []
            call: SessionResult | None = None

        graph = Graph(State)
        graph.add_node("call", AvatarNode("runway", avatar="cooking-teacher", output_key="call"))
        graph.add_node("summarize", summarize)          # def summarize(state) -> dict
        graph.add_edge(START, "call")
        graph.add_edge("call", "summarize")
        final = await graph.run(State(order_id="A1001"))

    A node is any callable taking the state and returning the fields to change: a dict,
    a model (the state's own class, or a partial model), or ``None``. Async nodes run in
    the event loop; plain functions run in a worker thread so they never stall a live
    session. Each node receives its own copy of the state. A node without outgoing edges
    ends its branch.

    Args:
        state: the state model (a pydantic ``BaseModel`` subclass).
        name: a name for logs and the CLI (defaults to the state's name).
    """

    def __init__(self, state: type[StateT], *, name: str | None = None) -> None:
        self.schema: StateSchema[StateT] = StateSchema.of(state)
        self.name = name or f"Graph[{state.__name__}]"
        self.nodes: dict[str, NodeSpec] = {}
        self._wiring = _Wiring()
        self._validated = False

    @property
    def state_model(self) -> type[StateT]:
        return self.schema.model

    def __repr__(self) -> str:
        return f"<Graph {self.name!r} nodes={list(self.nodes)}>"

    # ------------------------------------------------------------------ building
    def add_node(
        self, name: str | Callable[[Any], Any], node: Callable[[Any], Any] | None = None
    ) -> Graph[StateT]:
        """Add a node: ``add_node("name", fn)``, or ``add_node(fn)`` to use ``fn.__name__``."""
        if node is None:
            if not callable(name):
                raise GraphValidationError(
                    f"add_node({name!r}) needs a node", hint=f"add_node({name!r}, my_function)"
                )
            node, name = name, _callable_name(name)
        if not isinstance(name, str) or not name:
            raise GraphValidationError(
                f"a node name must be a non-empty string, got {name!r}",
                hint="add_node('my_node', my_function)",
            )
        if name in (START, END):
            raise GraphValidationError(f"{name!r} is reserved", hint="give the node another name")
        if name in self.nodes:
            raise GraphValidationError(
                f"a node named {name!r} was already added", hint="give the node another name"
            )
        if not callable(node):
            raise GraphValidationError(
                f"node {name!r} is a {type(node).__name__}, not a callable",
                hint="pass a function `def node(state) -> dict`, an async function, or an "
                "AvatarNode",
            )
        output_keys = getattr(node, "output_keys", ())
        providers = getattr(node, "providers", ())
        self.nodes[name] = NodeSpec(
            name=name,
            fn=node,
            is_async=is_async_callable(node),
            output_keys=tuple(output_keys) if isinstance(output_keys, list | tuple) else (),
            providers=tuple(providers) if isinstance(providers, list | tuple) else (),
        )
        self._validated = False
        return self

    def add_edge(self, start: str | Sequence[str], end: str) -> Graph[StateT]:
        """Run ``end`` after ``start``. Several edges may leave one node (its successors
        run concurrently). With a list of starts, ``end`` waits for all of them (a join)."""
        if isinstance(start, str):
            targets = self._wiring.edges.setdefault(start, [])
            if end not in targets:
                targets.append(end)
        else:
            sources = tuple(start)
            if not sources:
                raise GraphValidationError(
                    "add_edge([], ...) has no start", hint="name at least one node"
                )
            if START in sources:
                raise GraphValidationError(
                    "START cannot be part of a join", hint="use add_edge(START, node)"
                )
            self._wiring.joins.append((sources, end))
        self._validated = False
        return self

    def add_conditional_edges(
        self,
        source: str,
        router: Callable[[Any], Any],
        mapping: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> Graph[StateT]:
        """After ``source``, call ``router(state)`` (sync or async) to pick what runs next.

        The router returns a node name, ``END``, or a list of them (fan-out). With a
        ``mapping``, it returns keys of the mapping instead (``{"yes": "book", "no": END}``);
        a list of names declares where it may go. Without either, a ``-> Literal[...]``
        return annotation declares the destinations.
        """
        if not callable(router):
            raise GraphValidationError(
                f"the router after {source!r} is a {type(router).__name__}, not a callable",
                hint="pass a function `def route(state) -> str`",
            )
        resolved: Mapping[Hashable, str] | None
        if mapping is None:
            resolved = None
            destinations = _literal_destinations(router)
        elif isinstance(mapping, Mapping):
            resolved = dict(mapping)
            destinations = frozenset(resolved.values())
        else:
            resolved = None
            destinations = frozenset(mapping)
        self._wiring.branches.setdefault(source, []).append(
            Branch(source, router, resolved, destinations, is_async_callable(router))
        )
        self._validated = False
        return self

    def validate(self) -> Graph[StateT]:
        """Check the graph's shape; raise :class:`~masquerade.GraphValidationError` naming
        the first problem. :meth:`run` and :meth:`stream` call it for you."""
        if not self._validated:
            w = self._wiring
            validate_graph(self.schema, self.nodes, w.edges, w.joins, w.branches)
            self._validated = True
        return self

    @property
    def providers(self) -> set[str]:
        """Provider names the graph's AvatarNodes use (for preflight checks and the CLI)."""
        return {p for spec in self.nodes.values() for p in spec.providers}

    def mermaid(self) -> str:
        """The graph as a Mermaid flowchart (conditional edges dotted)."""

        def label(name: str) -> str:
            return {START: "__start__([START])", END: "__end__([END])"}.get(name, name)

        lines = ["flowchart TD"]
        for source, targets in self._wiring.edges.items():
            lines.extend(f"    {label(source)} --> {label(t)}" for t in targets)
        for sources, target in self._wiring.joins:
            lines.extend(f"    {s} --> {label(target)}" for s in sources)
        for source, branches in self._wiring.branches.items():
            for branch in branches:
                if branch.mapping is not None:
                    lines.extend(
                        f"    {label(source)} -. {key} .-> {label(t)}"
                        for key, t in branch.mapping.items()
                    )
                else:
                    lines.extend(
                        f"    {label(source)} -.-> {label(t)}"
                        for t in sorted(branch.destinations or ())
                    )
        return "\n".join(lines)

    # ------------------------------------------------------------------ running
    async def run(
        self,
        state: StateT | Mapping[str, Any] | None = None,
        *,
        host: Host | None = None,
        max_steps: int | None = None,
        on_event: Callable[[GraphEvent], Any] | None = None,
    ) -> StateT:
        """Run the graph to its end and return the final state.

        ``on_event`` (sync or async) receives every event :meth:`stream` would yield,
        the session events of AvatarNodes included::

            final = await graph.run(state, on_event=lambda event: print(event.type))

        Without a ``host``, one is created and entered for the run (``async with
        Host()``: built-in and entry-point plugins). Cancelling the run cancels running
        nodes; a running session ends through its cancel path. A run that takes more
        than ``max_steps`` steps (default: the number of nodes plus 100) is stopped with
        a :class:`~masquerade.GraphError`: a cycle whose router never leaves it.
        """
        stream = self.stream(
            state, host=host, max_steps=max_steps, session_events=on_event is not None
        )
        async with stream:
            async for event in stream:
                if on_event is not None:
                    value = on_event(event)
                    if inspect.isawaitable(value):
                        await value
        assert stream.state is not None
        return stream.state

    def stream(
        self,
        state: StateT | Mapping[str, Any] | None = None,
        *,
        host: Host | None = None,
        max_steps: int | None = None,
        session_events: bool = True,
    ) -> GraphStream[StateT]:
        """Run the graph, yielding :class:`~masquerade.NodeStarted`,
        :class:`~masquerade.NodeFinished`, the session events of running AvatarNodes
        (wrapped in :class:`~masquerade.NodeEvent`) and a final
        :class:`~masquerade.GraphEnded`::

            async with graph.stream(state) as events:
                async for event in events:
                    print(event.type)
            print(events.state)

        The run lives as long as the block: leaving it early (``break``, an exception)
        cancels what still runs, a session through its cancel path. The graph is
        validated and the initial state checked before anything runs.
        """
        self.validate()
        initial = self.schema.coerce(state)
        if max_steps is None:
            # An acyclic run takes at most one step per node; cycles get 100 more.
            max_steps = len(self.nodes) + DEFAULT_MAX_STEPS
        if max_steps < 1:
            raise GraphError(f"max_steps must be at least 1, got {max_steps}")
        return GraphStream(self, initial, host, max_steps, session_events)

    # ------------------------------------------------------------------ engine
    def _preflight(self, host: Host) -> None:
        if not self.providers:
            return
        available = host.providers
        for spec in self.nodes.values():
            for provider in spec.providers:
                if provider not in available:
                    raise NodeError(spec.name, host.provider_not_found(provider))

    async def _execute(
        self,
        state: StateT,
        host: Host,
        emit: Callable[[GraphEvent], Awaitable[None]],
        session_events: bool,
        max_steps: int,
    ) -> tuple[StateT, int]:
        self._preflight(host)
        w = self._wiring
        order = {name: i for i, name in enumerate(self.nodes)}
        waiting: list[set[str]] = [set() for _ in w.joins]
        active = await self._next(START, state, [])
        step = 0
        while active:
            step += 1
            if step > max_steps:
                raise GraphError(
                    f"the run took more than {max_steps} steps; nodes {active!r} were still "
                    "scheduled",
                    hint="check the routers of your cycles, or pass a larger max_steps",
                )
            active.sort(key=order.__getitem__)
            updates = await self._step(active, state, host, emit, session_events, step)
            state = self.schema.apply(state, [(n, updates[n]) for n in active])
            scheduled: list[str] = []
            for name in active:
                scheduled = await self._next(name, state, scheduled)
                for i, (sources, target) in enumerate(w.joins):
                    if name in sources:
                        waiting[i].add(name)
                        if waiting[i].issuperset(sources):
                            waiting[i].clear()
                            if target not in scheduled:
                                scheduled.append(target)
            active = [n for n in scheduled if n != END]
        return state, step

    async def _next(self, name: str, state: StateT, scheduled: list[str]) -> list[str]:
        for target in self._wiring.edges.get(name, ()):
            if target not in scheduled:
                scheduled.append(target)
        for branch in self._wiring.branches.get(name, ()):
            for target in await branch.route(state):
                if target not in scheduled:
                    scheduled.append(target)
        return scheduled

    async def _step(
        self,
        active: list[str],
        state: StateT,
        host: Host,
        emit: Callable[[GraphEvent], Awaitable[None]],
        session_events: bool,
        step: int,
    ) -> dict[str, dict[str, Any]]:
        updates: dict[str, dict[str, Any]] = {}
        failures: list[BaseException] = []

        async def run_node(spec: NodeSpec, tg: TaskGroup | None) -> None:
            context = RunContext(host, spec.name, step, emit if session_events else None)
            token = _current_run.set(context)
            started = time.monotonic()
            try:
                await emit(NodeStarted(node=spec.name, step=step))
                given = self.schema.copy_for_node(state)
                # The node's span is current while it runs: an AvatarNode's session (and
                # anything else traced inside the node) becomes its child.
                with node_span(spec.name, graph=self.name, host=host):
                    if spec.is_async:
                        output = await spec.fn(given)
                    else:
                        output = await anyio.to_thread.run_sync(
                            spec.fn, given, abandon_on_cancel=True
                        )
                        if inspect.isawaitable(output):
                            output = await output
            except Exception as exc:
                failures.append(_as_node_error(spec.name, exc))
            else:
                try:
                    updates[spec.name] = self.schema.normalize(spec.name, output, state)
                except GraphError as exc:
                    failures.append(exc)
                else:
                    await emit(
                        NodeFinished(
                            node=spec.name,
                            step=step,
                            duration_s=round(time.monotonic() - started, 6),
                            update=updates[spec.name],
                        )
                    )
            finally:
                _current_run.reset(token)
            if failures and tg is not None:
                tg.cancel_scope.cancel()

        specs = [self.nodes[name] for name in active]
        if len(specs) == 1:
            await run_node(specs[0], None)
        else:
            async with anyio.create_task_group() as tg:
                for spec in specs:
                    tg.start_soon(run_node, spec, tg, name=f"graph node {spec.name}")
        if failures:
            raise failures[0]
        return updates


def _as_node_error(node: str, exc: Exception) -> GraphError:
    # A node that runs its own task group raises a group of one: report the real error.
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, NodeError):
        return exc if exc.node == node else NodeError(node, exc)
    error = NodeError(node, exc)
    error.__cause__ = exc
    return error


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
                    final, steps = await self.graph._execute(
                        self.initial, host, _sender(send), self._session_events, self._max_steps
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
