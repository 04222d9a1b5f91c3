"""Quickstart: an avatar call, then a Python step. Run: masquerade run examples/quickstart.py"""
from pydantic import BaseModel

from masquerade import END, START, AvatarNode, Graph, SessionResult, tool


@tool
def lookup_order(order_id: str) -> dict:
    """Look up an order by its number."""
    return {"order_id": order_id, "status": "shipped"}


class State(BaseModel):
    customer: str = "Ada"
    call: SessionResult | None = None
    summary: str = ""


def summarize(state: State) -> dict:
    return {"summary": f"{state.call.outcome}, {len(state.call.tool_calls)} tool call(s)"}


avatar = AvatarNode("runway", avatar="human-resource", tools=[lookup_order], output_key="call",
                    personality=lambda state: f"Help {state.customer} track their orders.",
                    on_ready=lambda credentials: print("frontend joins:", credentials.public))
graph = Graph(State).add_node("call", avatar).add_node("summarize", summarize)
graph.add_edge(START, "call").add_edge("call", "summarize").add_edge("summarize", END)
