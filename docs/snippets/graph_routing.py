"""Concepts: a graph with a conditional edge, a fan-out, a reducer, and a live stream."""

import operator
from typing import Annotated, Literal

import anyio
from pydantic import BaseModel

from masquerade import (
    END,
    START,
    AvatarNode,
    Graph,
    GraphEnded,
    Host,
    NodeEvent,
    NodeFinished,
    NodeStarted,
    SessionResult,
    tool,
)
from masquerade.events import ToolResult
from masquerade.testing import ScriptedProvider


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number.
    """
    return {"order_id": order_id, "status": "damaged"}


class State(BaseModel):
    customer: str
    call: SessionResult | None = None
    notes: Annotated[list[str], operator.add] = []  # a reducer: parallel branches append


def route(state: State) -> Literal["refund", "thank"]:
    """The router: the annotation declares where it may go."""
    assert state.call is not None
    damaged = any(c.output and c.output.get("status") == "damaged" for c in state.call.tool_calls)
    return "refund" if damaged else "thank"


async def refund(state: State) -> dict[str, list[str]]:
    return {"notes": ["refund issued"]}


def email(state: State) -> dict[str, list[str]]:
    return {"notes": [f"email sent to {state.customer}"]}


async def sms(state: State) -> dict[str, list[str]]:
    return {"notes": ["sms sent"]}


def close(state: State) -> dict[str, list[str]]:
    return {"notes": [f"closed with {len(state.notes)} notes"]}


def thank(state: State) -> dict[str, list[str]]:
    return {"notes": ["thanked"]}


graph = Graph(State)
graph.add_node("call", AvatarNode("scripted", tools=[lookup_order], output_key="call"))
graph.add_node("refund", refund)
graph.add_node("email", email)
graph.add_node("sms", sms)
graph.add_node("close", close)
graph.add_node("thank", thank)
graph.add_edge(START, "call")
graph.add_conditional_edges("call", route)
graph.add_edge("refund", "email")  # fan-out: email and sms run concurrently
graph.add_edge("refund", "sms")
graph.add_edge(["email", "sms"], "close")  # a join: close waits for both
graph.add_edge("close", END)
graph.add_edge("thank", END)


async def main() -> State:
    provider = ScriptedProvider(
        [{"say": "Which order?"}, {"tool": "lookup_order", "args": {"order_id": "A7"}}]
    )
    host = Host(plugins=[provider], load_entrypoints=False)
    async with graph.stream(State(customer="Ada"), host=host) as events:
        async for event in events:
            match event:
                case NodeStarted(node=node, step=step):
                    print(f"step {step}: {node} started")
                case NodeEvent(node=node, event=ToolResult(name=name, output=output)):
                    print(f"  [{node}] {name} -> {output}")
                case NodeFinished(node=node, update=update):
                    print(f"  {node} finished: {sorted(update)}")
                case GraphEnded(steps=steps):
                    print(f"done in {steps} steps")
    final = events.state
    print(final.notes)
    return final


if __name__ == "__main__":
    anyio.run(main)
