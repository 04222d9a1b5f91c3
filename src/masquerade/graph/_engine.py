"""The graph engine: running a validated graph in supersteps.

A run proceeds in *steps*. Each step runs a set of nodes concurrently (one anyio task
each) against the same state; when all of them have finished, their updates are merged
(reducers, see :mod:`masquerade.graph._state`) and the edges leaving them decide the next
set. A node reached by several edges in one step runs once. ``add_edge(["a", "b"], "c")``
is a join: ``c`` runs once both ``a`` and ``b`` have finished. The run ends when no node
is scheduled.

When a node raises, the other nodes of its step are cancelled (a running session ends
through its cancel path) and the run raises :class:`~masquerade.NodeError` naming it.

**The node seam.** Every node body runs through one :data:`NodeCaller`
(``call_node(spec, state) -> output``); :func:`call_node` is the default. A runner that
checkpoints each node (a durable workflow step) passes its own caller to :func:`execute`
and leaves everything else (routing, reducers, events, spans) to the engine.

The engine imports the tracing plugin's span helpers (:func:`workflow_span`,
:func:`node_span`): the graph layer sits above the built-in plugins, which depend only
on the core (see ``docs/concepts/architecture.md``).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
from anyio.abc import TaskGroup

from ..builtin.tracing import node_span
from ..errors import GraphError, NodeError
from ._events import GraphEvent, NodeFinished, NodeStarted
from ._state import StateT
from ._validate import END, START

if TYPE_CHECKING:
    from ..host import Host
    from ._graph import Graph
    from ._nodes import NodeSpec

__all__ = ["RunContext", "current_run", "NodeCaller", "call_node", "execute"]

logger = logging.getLogger("masquerade.graph")

Emit: TypeAlias = Callable[[GraphEvent], Awaitable[None]]

#: Runs one node's body: ``await caller(spec, state)`` returns the node's raw output
#: (a dict, a model or ``None``), inside the node's :class:`RunContext` and span.
NodeCaller: TypeAlias = Callable[["NodeSpec", Any], Awaitable[Any]]


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


async def call_node(spec: NodeSpec, state: Any) -> Any:
    """The default :data:`NodeCaller`: async nodes run in the event loop, plain
    functions in a worker thread (so they never stall a live session)."""
    if spec.is_async:
        return await spec.fn(state)
    output = await anyio.to_thread.run_sync(spec.fn, state, abandon_on_cancel=True)
    if inspect.isawaitable(output):
        output = await output
    return output


def _preflight(graph: Graph[Any], host: Host) -> None:
    if not graph.providers:
        return
    available = host.providers
    for spec in graph.nodes.values():
        for provider in spec.providers:
            if provider not in available:
                raise NodeError(spec.name, host.provider_not_found(provider))


async def execute(
    graph: Graph[StateT],
    state: StateT,
    host: Host,
    emit: Emit,
    *,
    session_events: bool,
    max_steps: int,
    caller: NodeCaller = call_node,
) -> tuple[StateT, int]:
    """Run ``graph`` from ``START`` until no node is scheduled; return the final state and
    the number of steps taken."""
    _preflight(graph, host)
    w = graph._wiring
    order = {name: i for i, name in enumerate(graph.nodes)}
    waiting: list[set[str]] = [set() for _ in w.joins]
    active = await _next(graph, START, state, [])
    step = 0
    while active:
        step += 1
        if step > max_steps:
            raise GraphError(
                f"the run took more than {max_steps} steps; nodes {active!r} were still scheduled",
                hint="check the routers of your cycles, or pass a larger max_steps",
            )
        active.sort(key=order.__getitem__)
        run = _Step(graph, state, host, emit if session_events else None, emit, step, caller)
        updates = await run.run([graph.nodes[name] for name in active])
        state = graph.schema.apply(state, [(n, updates[n]) for n in active])
        scheduled: list[str] = []
        for name in active:
            scheduled = await _next(graph, name, state, scheduled)
            for i, (sources, target) in enumerate(w.joins):
                if name in sources:
                    waiting[i].add(name)
                    if waiting[i].issuperset(sources):
                        waiting[i].clear()
                        if target not in scheduled:
                            scheduled.append(target)
        active = [n for n in scheduled if n != END]
    return state, step


async def _next(graph: Graph[Any], name: str, state: Any, scheduled: list[str]) -> list[str]:
    for target in graph._wiring.edges.get(name, ()):
        if target not in scheduled:
            scheduled.append(target)
    for branch in graph._wiring.branches.get(name, ()):
        for target in await branch.route(state):
            if target not in scheduled:
                scheduled.append(target)
    return scheduled


class _Step:
    """One superstep: its nodes run concurrently against the same state."""

    def __init__(
        self,
        graph: Graph[Any],
        state: Any,
        host: Host,
        node_emit: Emit | None,
        emit: Emit,
        step: int,
        caller: NodeCaller,
    ) -> None:
        self.graph = graph
        self.state = state
        self.host = host
        self.node_emit = node_emit
        self.emit = emit
        self.step = step
        self.caller = caller
        self.updates: dict[str, dict[str, Any]] = {}
        self.failures: list[BaseException] = []

    async def run(self, specs: list[NodeSpec]) -> dict[str, dict[str, Any]]:
        if len(specs) == 1:
            await self._node(specs[0], None)
        else:
            async with anyio.create_task_group() as tg:
                for spec in specs:
                    tg.start_soon(self._node, spec, tg, name=f"graph node {spec.name}")
        if self.failures:
            raise self.failures[0]
        return self.updates

    async def _node(self, spec: NodeSpec, tg: TaskGroup | None) -> None:
        graph, step = self.graph, self.step
        token = _current_run.set(RunContext(self.host, spec.name, step, self.node_emit))
        started = time.monotonic()
        try:
            await self.emit(NodeStarted(node=spec.name, step=step))
            # The node's span is current while it runs: an AvatarNode's session (and
            # anything else traced inside the node) becomes its child.
            with node_span(spec.name, graph=graph.name, host=self.host):
                output = await self._attempts(spec)
        except Exception as exc:
            self.failures.append(_as_node_error(spec.name, exc))
        else:
            try:
                update = self.updates[spec.name] = graph.schema.normalize(
                    spec.name, output, self.state
                )
            except GraphError as exc:
                self.failures.append(exc)
            else:
                duration = round(time.monotonic() - started, 6)
                await self.emit(
                    NodeFinished(node=spec.name, step=step, duration_s=duration, update=update)
                )
        finally:
            _current_run.reset(token)
        if self.failures and tg is not None:
            tg.cancel_scope.cancel()


    async def _attempts(self, spec: NodeSpec) -> Any:
        """The node's body through the caller, again while its retry policy allows."""
        attempt = 0
        while True:
            attempt += 1
            given = self.graph.schema.copy_for_node(self.state)
            try:
                return await self.caller(spec, given)
            except Exception as exc:
                policy = spec.retry
                if policy is None or attempt >= policy.max_attempts:
                    raise
                if not policy.should_retry(exc):
                    raise
                delay = policy.delay(attempt)
                logger.info(
                    "node %s failed (%s: %s); attempt %d of %d in %.2fs",
                    spec.name, type(exc).__name__, exc, attempt + 1, policy.max_attempts, delay,
                )  # fmt: skip
                await anyio.sleep(delay)


def _as_node_error(node: str, exc: Exception) -> GraphError:
    # A node that runs its own task group raises a group of one: report the real error.
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, NodeError):
        return exc if exc.node == node else NodeError(node, exc)
    error = NodeError(node, exc)
    error.__cause__ = exc
    return error
