"""Graphs: compose avatar sessions and ordinary Python steps into one workflow.

::

    import operator
    from typing import Annotated
    from pydantic import BaseModel
    from masquerade import END, START, AvatarNode, Graph, SessionResult

    class State(BaseModel):
        customer: str
        call: SessionResult | None = None
        notes: Annotated[list[str], operator.add] = []     # a reducer: branches append

    def summarize(state: State) -> dict:
        return {"notes": [f"{len(state.call.tool_calls)} tool call(s)"]}

    graph = Graph(State)
    graph.add_node("concierge", AvatarNode("runway", avatar="cooking-teacher",
                                           tools=[lookup_order], output_key="call"))
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "concierge")
    graph.add_edge("concierge", "summarize")
    graph.add_edge("summarize", END)

    final = await graph.run(State(customer="Ada"))

    async with graph.stream(State(customer="Ada")) as events:  # or watch it run
        async for event in events:
            print(event.type)           # node.started, node.event, node.finished...

* **Nodes** are callables ``state -> update`` (sync or async); the update is a dict of
  fields, a model, or ``None``. :class:`AvatarNode` runs a whole session.
* **Edges**: :meth:`Graph.add_edge` (several edges leaving a node fan out and run
  concurrently; a list of sources joins), :meth:`Graph.add_conditional_edges` (a router
  picks the next node(s)), ``START`` and ``END``.
* **State updates** of one step merge by the field's reducer (``Annotated[T, reducer]``);
  without one, two branches writing the same field in one step is an error.
* **Errors**: a badly wired graph raises :class:`~masquerade.GraphValidationError` before
  anything runs; a node that raises stops the run with :class:`~masquerade.NodeError`
  naming it (running sessions end through their cancel path).
"""

from __future__ import annotations

from ._avatar import AvatarNode
from ._engine import RunContext, current_run
from ._events import GraphEnded, GraphEvent, NodeEvent, NodeFinished, NodeStarted
from ._graph import DEFAULT_MAX_STEPS, Graph
from ._retry import RetryPolicy
from ._stream import GraphStream
from ._validate import END, START

__all__ = [
    "Graph",
    "GraphStream",
    "AvatarNode",
    "RetryPolicy",
    "START",
    "END",
    "GraphEvent",
    "NodeStarted",
    "NodeFinished",
    "NodeEvent",
    "GraphEnded",
    "RunContext",
    "current_run",
    "DEFAULT_MAX_STEPS",
]
