"""The graph ``bench_durable.py`` runs: one short Runway call, then a Python step.

Workers load it by path (``masquerade worker benchmarks/durable_graph.py``).
"""

from __future__ import annotations

from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult, tool


class Bench(BaseModel):
    name: str = "run"
    call: SessionResult | None = None
    done: bool = False


@tool
def lookup(n: int) -> dict[str, int]:
    """Look up a number."""
    return {"n": n}


def finish(state: Bench) -> dict[str, bool]:
    return {"done": state.call is not None and state.call.outcome == "completed"}


avatar = AvatarNode(
    "runway",
    avatar="cooking-teacher",
    tools=[lookup],
    output_key="call",
    max_duration=60,
    metadata=lambda state: {"run": state.name},
)
graph = Graph(Bench, name="bench").add_node("call", avatar).add_node("finish", finish)
graph.add_edge(START, "call").add_edge("call", "finish").add_edge("finish", END)

#: A short conversation: one tool call, then the user hangs up.
SCRIPT = [{"say": "Hi"}, {"tool": "lookup", "args": {"n": 1}}, {"hangup": True}]
