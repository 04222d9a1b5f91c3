"""The graph the call service example serves: an avatar call, then a Python step.

    masquerade serve examples/service/app.py --static examples/service/static

Without ``RUNWAYML_API_SECRET`` the Runway emulator runs in-process and plays
``EMULATOR_SCRIPTS``; with the key, real sessions are created.
"""

from __future__ import annotations

from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult, tool


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number."""
    return {"order_id": order_id, "status": "shipped"}


class State(BaseModel):
    customer: str = "Ada"
    call: SessionResult | None = None
    summary: str = ""


def summarize(state: State) -> dict[str, str]:
    assert state.call is not None
    return {"summary": f"{state.call.outcome}, {len(state.call.tool_calls)} tool call(s)"}


avatar = AvatarNode(
    "runway",
    avatar="human-resource",
    tools=[lookup_order],
    output_key="call",
    personality=lambda state: f"Help {state.customer} track their orders.",
    max_duration=120,
)
graph = Graph(State, name="service-example")
graph.add_node("call", avatar).add_node("summarize", summarize)
graph.add_edge(START, "call").add_edge("call", "summarize").add_edge("summarize", END)

#: What the emulator plays offline: the frontend has a few seconds to join.
EMULATOR_SCRIPTS = {
    "runway": [
        {"say": "Hi! I'm the avatar of the call service example."},
        {"wait": 2},
        {"say": "Where is my order A1001?", "role": "user"},
        {"tool": "lookup_order", "args": {"order_id": "A1001"}},
        {"say": "It has shipped. Bye!"},
        {"hangup": True},
    ],
}
