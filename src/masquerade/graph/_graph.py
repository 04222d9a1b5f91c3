"""The :class:`Graph`: nodes over a typed state, edges and conditional edges.

Building a graph (``add_node``, ``add_edge``, ``add_conditional_edges``), checking it
(``validate``, see :mod:`masquerade.graph._validate`) and starting runs (``run``,
``stream``). The run itself is the engine's (:mod:`masquerade.graph._engine`); its
events reach the caller through :class:`~masquerade.graph.GraphStream`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic

from ..errors import GraphError, GraphValidationError
from ._events import GraphEvent
from ._nodes import (
    Branch,
    NodeSpec,
    Wiring,
    _literal_destinations,
    callable_name,
    is_async_callable,
)
from ._retry import RetryPolicy
from ._state import StateSchema, StateT
from ._stream import GraphStream
from ._validate import END, START, validate_graph

if TYPE_CHECKING:
    from ..host import Host

__all__ = ["Graph", "DEFAULT_MAX_STEPS"]

#: Steps a run may take beyond its number of nodes before it is stopped as a runaway loop.
DEFAULT_MAX_STEPS = 100


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
        self._wiring = Wiring()
        self._validated = False

    @property
    def state_model(self) -> type[StateT]:
        return self.schema.model

    def __repr__(self) -> str:
        return f"<Graph {self.name!r} nodes={list(self.nodes)}>"

    # ------------------------------------------------------------------ building
    def add_node(
        self,
        name: str | Callable[[Any], Any],
        node: Callable[[Any], Any] | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> Graph[StateT]:
        """Add a node: ``add_node("name", fn)``, or ``add_node(fn)`` to use ``fn.__name__``.

        ``retry`` runs the node again when it raises, as the
        :class:`~masquerade.RetryPolicy` allows (``RetryPolicy(max_attempts=3, backoff=1.0,
        retry_on=ProviderError)``); without one a node runs once.
        """
        if node is None:
            if not callable(name):
                raise GraphValidationError(
                    f"add_node({name!r}) needs a node", hint=f"add_node({name!r}, my_function)"
                )
            node, name = name, callable_name(name)
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
            retry=_check_retry(name, retry),
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


def _check_retry(node: str, retry: object) -> RetryPolicy | None:
    if retry is None or isinstance(retry, RetryPolicy):
        return retry
    raise GraphValidationError(
        f"the retry of node {node!r} is a {type(retry).__name__}, not a RetryPolicy",
        hint="add_node(name, fn, retry=RetryPolicy(max_attempts=3))",
    )
