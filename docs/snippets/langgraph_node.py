"""LangGraph guide: an AvatarNode as a node of LangGraph's StateGraph."""

from typing import Any, TypedDict

import anyio
from langgraph.graph import END, START, StateGraph

from masquerade import AvatarNode, Host, NodeEvent, SessionResult, tool
from masquerade_runway.emulator import RunwayEmulator


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the customer reads out.
    """
    return {"order_id": order_id, "status": "shipped"}


class State(TypedDict, total=False):
    customer: str
    call: SessionResult  # written by the avatar node
    ticket: str


def write_ticket(state: State) -> dict[str, str]:
    call = state["call"]
    return {"ticket": f"{state['customer']}: {call.outcome}, {len(call.tool_calls)} tool call(s)"}


def build_graph(host: Host | None = None) -> Any:  # a compiled LangGraph graph
    concierge = AvatarNode(
        "runway",
        avatar="cooking-teacher",
        tools=[lookup_order],
        personality=lambda state: f"You help {state['customer']} with their orders.",
        output_key="call",
        host=host,  # outside masquerade's Graph the node uses this host (default: Host())
    )
    builder = StateGraph(State)
    builder.add_node("concierge", concierge)  # a plain async callable: state -> dict
    builder.add_node("ticket", write_ticket)
    builder.add_edge(START, "concierge")
    builder.add_edge("concierge", "ticket")
    builder.add_edge("ticket", END)
    return builder.compile()


SCRIPT = [
    {"say": "Hi! Which order?"},
    {"tool": "lookup_order", "args": {"order_id": "A1001"}},
    {"say": "It has shipped."},
    {"hangup": True},
]


async def main() -> State:
    async with (
        RunwayEmulator(script=SCRIPT) as emulator,
        Host(plugins=[emulator.provider()]) as host,
    ):
        graph = build_graph(host)
        final: State = {}
        # Session events arrive in LangGraph's "custom" stream, wrapped in NodeEvent.
        async for mode, chunk in graph.astream(
            {"customer": "Ada"}, stream_mode=["custom", "values"]
        ):
            if mode == "values":
                final = chunk
            elif isinstance(chunk, NodeEvent) and chunk.event.type == "tool.result":
                print(f"[{chunk.node}] {chunk.event.name} -> {chunk.event.output}")
    print(final["ticket"])
    return final


if __name__ == "__main__":
    anyio.run(main)  # LangGraph runs on asyncio
